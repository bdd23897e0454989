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
    env = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
    assert env, f"{name} names no conda env"
    env_file = (REPO / "workflow" / "rules" / env.group(1)).resolve()
    assert env_file.is_file(), f"{name}: {env_file} missing"
    assert "lambda" not in body, f"{name} uses a lambda (put helpers in common.smk)"
    if "engine_gpus" in body or name in ("grade",):
        assert "benchmark:" in body, f"{name} runs an engine or grades but has no benchmark:"
    if "engine_gpus" in body:
        assert re.search(r"threads:\s*\d+", body), f"{name} runs an engine but declares no threads"


def test_conda_envs_are_pinned():
    for env in (REPO / "envs").glob("*.yaml"):
        text = env.read_text()
        deps = re.findall(r"^\s+- ([A-Za-z0-9_.\-\[\]]+)(.*)$", text, re.M)
        assert deps, f"{env.name} lists no dependencies"
        for name, rest in deps:
            if name in ("pip", "conda-forge", "bioconda", "nodefaults"):
                continue
            assert re.match(r"\s*(==|=)", rest) or "-e" in name, f"{env.name}: {name}{rest} is not pinned"


def test_default_config_plans_every_stage(tmp_path):
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", configfile=REPO / "config" / "config.yaml")
    planned = proc.stdout + proc.stderr
    for rule in ("convert_gguf", "generate_traces", "cut_prefixes", "rollout", "grade", "potentials", "report",
                 "events", "annotations", "dynamics_table", "power_curve", "plot_dynamics"):
        assert rule in planned
    assert "optimize_cot" not in planned  # off in the default: it costs several ordinary runs


@pytest.mark.parametrize(("configfile", "expected"), [
    ("config/paper.yaml", ("events", "judge_spikes", "optimize_cot", "optimized_table", "dynamics_table")),
    ("config/showcase.yaml", ("events", "judge_spikes", "optimize_cot", "optimized_table", "dynamics_table")),
])
def test_shipped_configs_plan_the_dynamics_stages(tmp_path, configfile, expected):
    """The paper's study and the showcase plan every trace-dynamics rule (a dry run: nothing
    is downloaded or computed)."""
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", configfile=REPO / configfile)
    planned = proc.stdout + proc.stderr
    for rule in expected:
        assert re.search(rf"^{rule}\s+\d+", planned, re.M), (configfile, rule)
