"""Static checks of the workflow: lint, conventions, dry runs of the shipped configs."""

import re
import subprocess

import pytest

from conftest import BIN, REPO, snakemake

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def rules():
    for path in RULE_FILES:
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.S | re.M):
            yield path.name, match.group(1), match.group(2)


def test_lint_is_clean():
    proc = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


@pytest.mark.parametrize(("file", "name", "body"), list(rules()), ids=lambda x: x if isinstance(x, str) and "\n" not in x else "")
def test_rule_conventions(file, name, body):
    if name == "all":
        return
    assert "log:" in body, f"{name} has no log:"
    env = re.search(r'conda:\s*\n\s*(ENGINE_ENV|"([^"]+)")', body)
    assert env, f"{name} names no conda env"
    for file in [env.group(2)] if env.group(2) else ["../../envs/engine.yaml", "../../envs/engine-gpu.yaml"]:
        env_file = (REPO / "workflow" / "rules" / file).resolve()
        assert env_file.is_file(), f"{name}: {env_file} missing"
    assert "lambda" not in body, f"{name} uses a lambda (put helpers in common.smk)"
    if "engine_gpus" in body or name in ("grade",):
        assert "benchmark:" in body, f"{name} runs an engine or grades but has no benchmark:"
    if "engine_gpus" in body:
        assert re.search(r"threads:\s*(\d+|engine_threads)", body), f"{name} runs an engine but declares no threads"


def test_default_config_plans_every_stage(tmp_path):
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", configfile=REPO / "config" / "config.yaml")
    planned = proc.stdout + proc.stderr
    for rule in ("convert_gguf", "generate_traces", "cut_prefixes", "rollout", "grade", "potentials", "report",
                 "events", "annotations", "dynamics_table", "power_curve", "plot_dynamics"):
        assert rule in planned
    assert "optimize_cot" not in planned  # off in the default: it costs several ordinary runs


def _plan_counts(tmp_path, config):
    import yaml

    tmp_path.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", configfile=path)
    out = proc.stdout + proc.stderr
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}


def test_the_shard_count_comes_from_the_config_and_adaptive_runs_use_their_own_rule(tmp_path):
    """Each run gets its own shard count (planned tokens over rollouts.tokens_per_shard, the
    planner's rollout_shards): here 3 shards of the potential run, 2 of the transfer run."""
    import yaml

    from cot_potential.config import validate
    from cot_potential.plan import rollout_shards

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["rollouts"]["tokens_per_shard"] = 25_000
    shards = rollout_shards(validate(yaml.safe_load(yaml.safe_dump(config))))
    assert shards == {("smollm2-oneshot", "arith"): 3, ("transfer.oneshot-to-direct", "arith"): 2}
    counts = _plan_counts(tmp_path / "fixed", config)
    assert counts["rollout"] == 5 and counts["grade"] == 5
    config["rollouts"]["sampling"] = "adaptive"
    counts = _plan_counts(tmp_path / "adaptive", config)
    assert counts["adaptive_rollout"] == 3 and counts["rollout"] == 2
    assert counts["grade"] == 5


@pytest.mark.parametrize(("configfile", "expected"), [
    ("config/paper.yaml", ("events", "judge_events", "optimize_cot", "optimized_table", "dynamics_table")),
    ("config/showcase.yaml", ("events", "judge_events", "optimize_cot", "optimized_table", "dynamics_table")),
])
def test_shipped_configs_plan_the_dynamics_stages(tmp_path, configfile, expected):
    """The paper's study and the showcase plan every trace-dynamics rule (a dry run: nothing
    is downloaded or computed)."""
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", configfile=REPO / configfile)
    planned = proc.stdout + proc.stderr
    for rule in expected:
        assert re.search(rf"^{rule}\s+\d+", planned, re.M), (configfile, rule)
