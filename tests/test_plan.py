"""The cost planner on the paper's config and on measured results."""

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO
from cot_potential.config import ConfigError
from cot_potential.ids import slug
from cot_potential.plan import Planner, engine_starts, grading_lines, load_config, main, rollout_shards

PAPER = REPO / "config" / "paper.yaml"


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    config = load_config([PAPER])
    # An empty working directory: the plan must not depend on what this checkout has run.
    return config, Planner(config, tmp_path_factory.mktemp("plan")).lines()


def line(lines, stage, model, dataset):
    return next(x for x in lines if x["stage"] == stage and x["model"] == model and x["dataset"] == dataset)


def test_the_paper_plan_counts_prefixes_rollouts_tokens_and_gpu_hours(paper):
    config, lines = paper
    x = line(lines, "rollouts", "qwen3-32b", "aime2024")
    cuts = len(config["prefixes"]["fractions"])
    assert x["prefixes"] == 30 * cuts and x["completions"] == 30 * cuts * 128
    # (1 - f) T per continuation of a 12000-token thinking trace, 128 per cut
    expected = 30 * 128 * sum(max(16, (1 - f) * 12000) for f in config["prefixes"]["fractions"])
    assert x["tokens"] == pytest.approx(expected)
    assert x["tokens"] > 10_000 * 30 * 128  # thinking models on AIME: 10k+ tokens per trace
    gpus, shards = 2, x["jobs"]  # tensor_parallel_size of qwen3-32b; its shards of <= tokens_per_shard
    assert shards == -(-expected // config["rollouts"]["tokens_per_shard"])
    assert x["gpu_hours"] == pytest.approx(gpus * (expected / 3000 + shards * 120) / 3600)
    stages = {x["stage"].split(" (")[0] for x in lines}
    assert stages == {"traces", "rollouts", "transfer rollouts"}
    runs = sum(len(entry["datasets"]) for entry in config["potentials"])  # 18 math runs + the maze runs
    assert len([x for x in lines if x["stage"] == "rollouts"]) == runs > 18
    maze = config["datasets"]["maze-potential"]["maze"]
    mazes = [x for x in lines if x["stage"] == "rollouts" and x["dataset"] == "maze-potential"]
    assert mazes and all(x["prefixes"] == maze["n_per_generator"] * len(maze["generators"]) * cuts for x in mazes)
    total = sum(x["tokens"] for x in lines if x["stage"] == "rollouts")
    assert 5e9 < total < 2e10  # ~560 problems x 21 cuts x 128 x ~1-8k tokens x 6 models
    assert grading_lines(lines, config)[0]["completions"] == sum(x["completions"] for x in lines)


def test_engine_starts_are_at_most_2_percent_of_the_paper_plan(paper):
    """rollouts.tokens_per_shard is sized for it: each shard (job) pays an engine start, and a
    fixed 70 shards per run made the starts 7% of the plan (30-problem AIME runs included)."""
    config, lines = paper
    starts = engine_starts(lines)
    total = sum(x["gpu_hours"] for x in lines)
    start_s = config["plan"]["engine_start_s"]
    gpus = {m: {**config["engine"], **spec.get("engine", {})}.get("tensor_parallel_size", 1)
            for m, spec in config["models"].items()}
    assert starts["start_gpu_hours"] == pytest.approx(sum(x["jobs"] * gpus[x["model"]] * start_s for x in lines) / 3600)
    assert starts["share"] == pytest.approx(starts["start_gpu_hours"] / total)
    assert 0 < starts["share"] <= 0.02, f"engine starts are {starts['share']:.1%} of the planned GPU hours"
    jobs = {(x["model"], x["dataset"]): x["jobs"] for x in lines if x["stage"] == "rollouts"}
    assert jobs[("qwen2.5-1.5b-instruct", "aime2024")] < jobs[("qwen3-32b", "math500")]  # sized by work


def test_shard_counts_come_from_the_config_alone(paper, tmp_path):
    """A run's shards (the workflow's jobs) do not change once results exist: measured lengths
    change the planned cost, never the shard count."""
    config, lines = paper
    shards = rollout_shards(config)
    assert {(x["model"], x["dataset"]): x["jobs"] for x in lines if x["stage"] == "rollouts"} == \
        {(m, d): shards[(slug(m), d)] for m, d in Planner(config, None).potential_runs()}
    assert shards[("transfer.qwen3-32b-to-0_6b", "aime2024")] >= 1
    results = tmp_path / "results" / "traces" / "qwen3-32b"
    results.mkdir(parents=True)
    pd.DataFrame({"n_tokens": [100, 200]}).to_parquet(results / "aime2024.parquet")  # far shorter than planned
    measured = Planner(config, tmp_path).lines()
    x = line(measured, "rollouts", "qwen3-32b", "aime2024")
    assert "trace length measured" in x["basis"] and x["jobs"] == line(lines, "rollouts", "qwen3-32b", "aime2024")["jobs"]
    assert rollout_shards(config) == shards


def test_the_command_prints_a_table_with_totals(capsys, tmp_path):
    assert main(["--configfile", str(PAPER), "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for word in ("TOTAL rollouts", "TOTAL transfer rollouts", "grading (CPU)", "GPU h", "Mtokens", "engine starts"):
        assert word in out
    starts = next(row for row in out.splitlines() if row.startswith("engine starts"))
    assert "% of the total GPU h" in starts
    assert main(["--configfile", str(PAPER), "--workdir", str(tmp_path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) > 18


def test_measured_results_replace_the_assumptions(tmp_path):
    config = load_config([REPO / "config" / "config.yaml"])
    results = tmp_path / "results"
    (results / "problems").mkdir(parents=True)
    pd.DataFrame({"problem_id": [f"p{i}" for i in range(5)]}).to_parquet(results / "problems" / "arith.parquet")
    (results / "traces" / "smollm2-oneshot").mkdir(parents=True)
    pd.DataFrame({"n_tokens": [40, 60]}).to_parquet(results / "traces" / "smollm2-oneshot" / "arith.parquet")
    (results / "potentials" / "smollm2-oneshot").mkdir(parents=True)
    pd.DataFrame({"mean_completion_tokens": [30.0, 10.0], "n_samples": [16, 16], "potential": [0.5, 1.0]}).to_parquet(
        results / "potentials" / "smollm2-oneshot" / "arith.parquet")
    lines = Planner(config, tmp_path).lines()
    x = line(lines, "rollouts", "smollm2-oneshot", "arith")
    assert "problems measured" in x["basis"] and "completion length measured" in x["basis"]
    assert x["completions"] == 5 * 11 * 16 and x["tokens"] == pytest.approx(5 * 11 * 16 * 20.0)
    traces = line(lines, "traces", "smollm2-oneshot", "arith")
    assert traces["tokens"] == pytest.approx(5 * 50.0)


def test_adaptive_plans_expected_cost_below_its_bound(tmp_path):
    config = load_config([REPO / "config" / "config.yaml"])
    config["rollouts"]["sampling"] = "adaptive"
    lines = Planner(config, tmp_path).lines()
    expected = line(lines, "rollouts (adaptive, expected)", "smollm2-oneshot", "arith")
    bound = line(lines, "rollouts (adaptive, upper bound)", "smollm2-oneshot", "arith")
    assert 0 < expected["completions"] < bound["completions"]


def test_an_uncountable_dataset_asks_for_its_size(tmp_path, capsys):
    """The planner and the workflow's shard counts both need it: a config error, one line."""
    config = load_config([PAPER])
    config["plan"]["problems"].pop("math500")
    with pytest.raises(ConfigError, match="plan.problems.math500"):
        Planner(config, tmp_path).lines()
    with pytest.raises(ConfigError, match="datasets.math500.limit"):
        rollout_shards(config)
    paper = yaml.safe_load(PAPER.read_text())
    paper["plan"]["problems"].pop("math500")
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(paper))
    with pytest.raises(SystemExit, match="plan.problems.math500"):
        main(["--configfile", str(tmp_path / "paper.yaml"), "--workdir", str(tmp_path)])


def test_a_priced_model_gets_its_generated_tokens_and_cost(paper, capsys, tmp_path):
    config, lines = paper
    from cot_potential.plan import api_cost_lines

    priced = {**config, "plan": {**config["plan"], "price_per_mtoken": {"qwen3-32b": 0.5}}}
    (cost,) = api_cost_lines(lines, priced)
    tokens = sum(x["tokens"] for x in lines if x["model"] == "qwen3-32b" and not x["stage"].endswith("upper bound"))
    assert tokens > 0 and cost["tokens"] == pytest.approx(tokens)
    assert cost["cost"] == pytest.approx(tokens / 1e6 * 0.5)
    assert api_cost_lines(lines, config) == []


def test_the_paper_plans_transfer_rollouts_with_the_pairs_budget(paper):
    """Qwen3-32B -> Qwen3-0.6B: the budget is 10,240 new tokens at every fraction (what the
    config check fits into the target's 40,960), not L_max minus the placed prefix."""
    config, lines = paper
    x = line(lines, "transfer rollouts (qwen3-32b-to-0_6b)", "qwen3-0.6b", "aime2024")
    pair = next(p for p in config["transfer"]["pairs"] if p["name"] == "qwen3-32b-to-0_6b")
    assert pair["budget"] == 10240 and "budget 10240" in x["basis"]
    length, n, fractions = 15000, 128, [f for f in pair["fractions"] if f > 0]  # Qwen3-0.6B on AIME
    base, streams = 5 * n, len(config["transfer"]["conditions"])  # alone (4N) + floor (N); one trace each
    expected = 30 * (base * min(10240, length)
                     + streams * n * sum(min(10240, max(16, (1 - f) * length)) for f in fractions))
    assert x["tokens"] == pytest.approx(expected)
