import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from cot_potential.dynamics import DynamicsSettings, detect_events
from cot_potential.labels import Resolution, no_labels
from cot_potential.rates import RATES, cut_grid_label, pass_at_k, rate_rows
from cot_potential.simulate import simulate_curves
from cot_potential.stats import clopper_pearson

NONE = no_labels()


def test_pass_at_k_is_the_unbiased_estimator():
    assert pass_at_k(5, 0, 1) == 0 and pass_at_k(5, 5, 3) == 1
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    # brute force: the share of k-subsets of the n samples that contain a correct one
    n, c, k = 6, 2, 3
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(samples, k))
    assert pass_at_k(n, c, k) == pytest.approx(np.mean([any(s) for s in subsets]))
    assert math.isnan(pass_at_k(2, 1, 3))


def _run(n=60, per=3, seed=0):
    pot, _ = simulate_curves(n, [i / 10 for i in range(11)], n_samples=64, seed=seed, traces_per_problem=per)
    events, traces = detect_events(pot, DynamicsSettings())
    return pot, events, traces


def test_rates_are_shares_of_traces_split_by_correctness_with_problem_bootstrap():
    _, events, traces = _run()
    rows = rate_rows(traces, events, NONE, model="m", dataset="d", trace_source="sampled",
                     protocol={"n_samples": 64, "cut_grid": "g", "n_grid_cuts": 11}, ks=[1, 3])
    table = pd.DataFrame(rows).set_index("traces")
    assert list(table.index) == ["all", "correct", "incorrect"]
    assert table.loc["all", "n_traces"] == 60 and table.loc["all", "n_problems"] == 20
    assert table.loc["correct", "n_traces"] + table.loc["incorrect", "n_traces"] == 60
    assert table.loc["all", "monotone_rate"] == pytest.approx(traces["monotone"].mean())
    assert table.loc["all", "no_significant_drop_rate"] == pytest.approx(traces["no_significant_drop"].mean())
    assert table.loc["all", "spike_rate"] == pytest.approx((traces["n_spikes"] > 0).mean())
    correct = traces[traces["trace_correct"]]
    assert table.loc["correct", "lucky_guess_rate"] == pytest.approx(correct["lucky_guess"].mean())
    assert table.loc["incorrect", "lucky_guess_rate"] == 0
    assert table.loc["all", "drop_rate"] == pytest.approx((traces["n_drops"] > 0).mean())
    # 0 of n: no point interval, and at least as wide as 0 of the incorrect traces' problems
    _, cp_high = clopper_pearson(0, table.loc["incorrect", "n_problems"])
    assert table.loc["incorrect", "lucky_guess_rate_ci_high"] >= cp_high
    for rate in ("monotone", "spike", "drop", "drop_recovered", "lucky_guess"):
        row = table.loc["all"]
        assert row[f"{rate}_rate_ci_low"] <= row[f"{rate}_rate"] <= row[f"{rate}_rate_ci_high"]
    # without labels, no insight/jump or tangent/flaw split: empty, never made up
    for rate in ("insight", "jump", "tangent", "flaw"):
        assert table[f"{rate}_rate"].isna().all()
    assert (table["label_source"] == "none").all() and (table["drop_label_source"] == "none").all()
    assert table.loc["all", "n_drops"] == (events["kind"] == "drop").sum()
    assert table.loc["all", "pass_at_3"] >= table.loc["all", "pass_at_1"] >= table.loc["all", "pass_at_1_no_lucky"]
    assert np.isnan(table.loc["correct", "pass_at_1"])
    assert table.loc["all", "n_samples"] == 64 and table.loc["all", "cut_grid"] == "g"


def test_insight_and_jump_rates_come_from_the_labels():
    _, events, traces = _run(seed=1)
    spikes = events[events["kind"] == "spike"]["event_id"].tolist()
    labels = {e: ("insight" if i % 2 == 0 else "jump") for i, e in enumerate(spikes)}
    rows = rate_rows(traces, events, Resolution(labels, "human", float("nan"), len(labels), 0, 0), model="m",
                     dataset="d", trace_source="sampled", protocol={}, ks=[1])
    all_row = rows[0]
    keys = events[events["event_id"].isin([e for e, lab in labels.items() if lab == "insight"])][["problem_id", "trace_id"]]
    assert all_row["insight_rate"] == pytest.approx(len(keys.drop_duplicates()) / len(traces))
    assert all_row["label_source"] == "human" and all_row["jump_rate"] > 0
    assert all_row["insight_rate"] <= all_row["spike_rate"]


def test_cut_grid_labels():
    assert cut_grid_label({"mode": "fraction", "fractions": [i / 10 for i in range(11)]}) == "fraction:0-1/0.1 (11)"
    assert cut_grid_label({"mode": "fraction", "fractions": [i / 20 for i in range(21)]}) == "fraction:0-1/0.05 (21)"
    assert cut_grid_label({"mode": "fraction", "fractions": [0, 0.3, 1]}) == "fraction:0,0.3,1 (3)"
    assert cut_grid_label({"mode": "stride", "stride": 16}) == "stride:16"


def test_the_rates_job_uses_human_labels_and_rejects_labels_of_another_run(tmp_path):
    from cot_potential.rates import dynamics_table_job

    pot, events, traces = _run(seed=2)
    pot.to_parquet(tmp_path / "potentials.parquet")
    pd.DataFrame({"problem_id": traces["problem_id"].unique()}).to_parquet(tmp_path / "problems.parquet")
    traces.to_parquet(tmp_path / "traces.parquet")
    events.to_parquet(tmp_path / "events.parquet")
    spikes = events.loc[events["kind"] == "spike", "event_id"]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"event_id": spikes, "label": ["insight"] * len(spikes)}).to_csv(labels, index=False)
    run = {"model": "m", "dataset": "d", "trace_source": "sampled", "key": "m/d"}
    out = tmp_path / "dynamics.csv"
    kwargs = dict(judge_paths={}, settings={"pass_at_k": [1, 3]}, prefixes={"mode": "fraction", "fractions": [0, 0.5, 1]},
                  seed=0, config={})
    dynamics_table_job([run], [str(tmp_path / "traces.parquet")], [str(tmp_path / "events.parquet")],
                       [str(tmp_path / "potentials.parquet")], [str(tmp_path / "problems.parquet")], str(out),
                       human_labels={"m/d": str(labels)}, **kwargs)
    written = pd.read_csv(out)
    assert list(written["scope"]) == ["dataset"] * 3 + ["pooled"] * 3  # one dataset: pooled is the same
    table = written[written["scope"] == "dataset"].set_index("traces")
    assert (table["label_source"] == "human").all()
    assert table.loc["all", "insight_rate"] == pytest.approx(table.loc["all", "spike_rate"])
    assert table.loc["all", "jump_rate"] == 0 and table.loc["all", "n_human_labels"] == len(spikes)
    assert (tmp_path / "dynamics.provenance.json").is_file()
    # descriptive monotone at every tolerance, each beside its null from this run's curves
    assert table.loc["all", "monotone_rate_tol10"] == pytest.approx(table.loc["all", "monotone_rate"])
    for suffix in ("tol00", "tol05", "tol10", "tol20"):
        for traces_ in ("all", "correct", "incorrect"):
            null = table.loc[traces_, [f"non_monotone_null_{suffix}{end}" for end in ("_low", "", "_high")]]
            assert null.is_monotonic_increasing and null.between(0, 1).all()
    rates = table.loc["all", ["monotone_rate_tol00", "monotone_rate_tol05", "monotone_rate_tol10", "monotone_rate_tol20"]]
    assert rates.is_monotonic_increasing
    nulls = table.loc["all", ["non_monotone_null_tol00", "non_monotone_null_tol20"]]
    assert nulls.iloc[0] >= nulls.iloc[1] and table.loc["all", "monotone_null_replicates"] == 200
    pd.DataFrame({"event_id": ["other/0/spike/3"], "label": ["jump"]}).to_csv(labels, index=False)
    with pytest.raises(ValueError, match="not events of this run"):
        dynamics_table_job([run], [str(tmp_path / "traces.parquet")], [str(tmp_path / "events.parquet")],
                       [str(tmp_path / "potentials.parquet")], [str(tmp_path / "problems.parquet")], str(out),
                           human_labels={"m/d": str(labels)}, **kwargs)


def _write_run(folder, seed, per=2, n=40):
    pot, events, traces = _run(n=n, per=per, seed=seed)
    folder.mkdir()
    for name, frame in (("potentials", pot), ("events", events), ("traces", traces)):
        frame.to_parquet(folder / f"{name}.parquet")
    return traces, events


def _two_datasets_with_levels(tmp_path):
    """The rates table of one model on datasets a and b (b's problems have levels 1-3)."""
    from cot_potential.rates import dynamics_table_job

    small, _ = _write_run(tmp_path / "a", seed=3, n=20)  # the same problem ids in both datasets
    large, _ = _write_run(tmp_path / "b", seed=4, n=60)
    ids = large["problem_id"].unique()
    pd.DataFrame({"problem_id": small["problem_id"].unique()}).to_parquet(tmp_path / "a" / "problems.parquet")
    pd.DataFrame({"problem_id": ids, "level": [1 + i % 3 for i in range(len(ids))]}).to_parquet(
        tmp_path / "b" / "problems.parquet")
    runs = [{"model": "m", "dataset": d, "trace_source": "sampled", "key": f"m/{d}"} for d in ("a", "b")]
    paths = [[str(tmp_path / d / f"{name}.parquet") for d in ("a", "b")]
             for name in ("traces", "events", "potentials", "problems")]
    out = tmp_path / "dynamics.csv"
    dynamics_table_job(runs, *paths, str(out), human_labels={}, judge_paths={}, settings={"pass_at_k": [1]},
                       prefixes={"mode": "fraction", "fractions": [i / 10 for i in range(11)]}, seed=0, config={})
    return small, large, ids, out


def test_a_model_pooled_over_its_datasets_weighs_every_trace_the_same_and_levels_get_rows(tmp_path):
    small, large, ids, out = _two_datasets_with_levels(tmp_path)
    table = pd.read_csv(out, dtype={"level": str}).fillna({"level": ""})
    rows = table[table["traces"] == "all"].set_index(["scope", "dataset", "level"])
    pooled = rows.loc[("pooled", "a+b", "")]
    assert pooled["n_traces"] == len(small) + len(large)
    assert pooled["n_problems"] == small["problem_id"].nunique() + large["problem_id"].nunique()
    both = pd.concat([small, large])
    assert pooled["monotone_rate"] == pytest.approx(both["monotone"].mean())  # traces weigh equally
    assert pooled["spike_rate"] == pytest.approx((both["n_spikes"] > 0).mean())
    levels = rows.xs("level", level="scope")
    assert list(levels.index) == [("b", "1"), ("b", "2"), ("b", "3")]  # only b has levels
    assert levels["n_traces"].sum() == len(large)
    level_of = dict(zip(ids, [1 + i % 3 for i in range(len(ids))]))
    first = large[large["problem_id"].map(level_of) == 1]
    assert levels.loc[("b", "1"), "monotone_rate"] == pytest.approx(first["monotone"].mean())
    assert levels["non_monotone_null_tol10"].between(0, 1).all()


def test_the_report_shows_pooled_and_level_rows_and_the_monotone_null(tmp_path):
    from cot_potential.dynamics_report import PAPER, monotone_tolerances, paper_comparison, summary_rows
    from cot_potential.report import render

    rates = pd.read_csv(_two_datasets_with_levels(tmp_path)[3])
    assert [t["tolerance"] for t in monotone_tolerances(rates)] == [0.0, 0.05, 0.1, 0.2]
    assert [r["where"] for r in summary_rows(rates) if r["traces"] == "all"] == [
        "a+b (pooled)", "b level 1", "b level 2", "b level 3"]
    compared = paper_comparison(rates)
    assert sorted(c["dataset"] for c in compared) == ["a", "a+b", "b"]  # levels are no model's number
    settings = {"window": 2, "test": "fisher", "correction": "holm", "alpha": 0.05, "spike_min_rise": 0.2,
                "tangent_min_drop": 0.2, "recovery_share": 0.5, "guess_start_max": 0.5,
                "guess_pre_answer_max": 0.35, "monotone_tolerance": 0.1, "monotone_null_replicates": 200}
    html = render("dynamics.html.j2", {"dynamics": {
        "sections": [], "paper": PAPER, "comparison": compared, "power": [], "power_figure": None, "optimized": [],
        "pass_columns": ["pass_at_1"], "rate_names": list(RATES), "monotone_tolerances": monotone_tolerances(rates),
        "summary_rows": summary_rows(rates), "settings": settings, "isnan": lambda x: x != x}})
    assert "Monotone curves and sampling noise" in html and "b level 2" in html and "a+b (pooled)" in html


def test_tangent_and_flaw_rates_come_only_from_drop_labels(tmp_path):
    from cot_potential.rates import dynamics_table_job

    pot, events, traces = _run(seed=3)
    drops = events.loc[events["kind"] == "drop", "event_id"].tolist()
    assert len(drops) >= 4
    labels = {e: ("tangent", "flaw", "other")[i % 3] for i, e in enumerate(drops)}
    for name, frame in (("potentials", pot), ("events", events), ("traces", traces),
                        ("problems", traces[["problem_id"]].drop_duplicates())):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    path = tmp_path / "labels.csv"
    pd.DataFrame({"event_id": list(labels), "label": list(labels.values())}).to_csv(path, index=False)
    run = {"model": "m", "dataset": "d", "trace_source": "sampled", "key": "m/d"}
    out = tmp_path / "dynamics.csv"
    dynamics_table_job([run], *([str(tmp_path / f"{name}.parquet")] for name in ("traces", "events", "potentials",
                                                                                  "problems")), str(out),
                       human_labels={"m/d": str(path)}, judge_paths={}, settings={}, prefixes={}, seed=0, config={})
    table = pd.read_csv(out)
    row = table[table["scope"] == "dataset"].set_index("traces").loc["all"]
    for name in ("tangent", "flaw"):
        labelled = events[events["event_id"].isin([e for e, lab in labels.items() if lab == name])]
        keys = labelled[["problem_id", "trace_id"]].drop_duplicates()
        assert row[f"{name}_rate"] == pytest.approx(len(keys) / len(traces))
        assert row[f"{name}_rate"] <= row["drop_rate"]
    assert row["drop_label_source"] == "human" and row["n_human_drop_labels"] == len(drops)
    # the spikes are not labelled: their split stays empty, the drops' does not
    assert row["label_source"] == "none" and np.isnan(row["insight_rate"])
    assert row["n_drops"] == len(drops)
