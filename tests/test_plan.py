"""The cost planner on the paper's config and on measured results."""

import json

import pandas as pd
import pytest

from conftest import REPO
from cot_potential.plan import Planner, grading_lines, load_config, main

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
    gpus = 2  # tensor_parallel_size of qwen3-32b
    assert x["gpu_hours"] == pytest.approx(gpus * (expected / 3000 + 70 * 120) / 3600)
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


def test_the_command_prints_a_table_with_totals(capsys, tmp_path):
    assert main(["--configfile", str(PAPER), "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for word in ("TOTAL rollouts", "TOTAL transfer rollouts", "grading (CPU)", "GPU h", "Mtokens"):
        assert word in out
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


def test_an_uncountable_dataset_asks_for_its_size(tmp_path):
    config = load_config([PAPER])
    config["plan"]["problems"].pop("math500")
    with pytest.raises(SystemExit, match="plan.problems.math500"):
        Planner(config, tmp_path).lines()


def test_a_priced_model_gets_its_generated_tokens_and_cost(paper, capsys, tmp_path):
    config, lines = paper
    from cot_potential.plan import api_cost_lines

    priced = {**config, "plan": {**config["plan"], "price_per_mtoken": {"qwen3-32b": 0.5}}}
    (cost,) = api_cost_lines(lines, priced)
    tokens = sum(x["tokens"] for x in lines if x["model"] == "qwen3-32b" and not x["stage"].endswith("upper bound"))
    assert tokens > 0 and cost["tokens"] == pytest.approx(tokens)
    assert cost["cost"] == pytest.approx(tokens / 1e6 * 0.5)
    assert api_cost_lines(lines, config) == []
