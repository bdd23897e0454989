import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from cot_potential.dynamics import DynamicsSettings, detect_events
from cot_potential.labels import Resolution, no_labels
from cot_potential.rates import cut_grid_label, pass_at_k, rate_rows
from cot_potential.simulate import simulate_curves

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
                     protocol={"n_samples": 64, "cut_grid": "g", "n_grid_cuts": 11}, ks=[1, 3], seed=0)
    table = pd.DataFrame(rows).set_index("traces")
    assert list(table.index) == ["all", "correct", "incorrect"]
    assert table.loc["all", "n_traces"] == 60 and table.loc["all", "n_problems"] == 20
    assert table.loc["correct", "n_traces"] + table.loc["incorrect", "n_traces"] == 60
    assert table.loc["all", "monotone_rate"] == pytest.approx(traces["monotone"].mean())
    assert table.loc["all", "spike_rate"] == pytest.approx((traces["n_spikes"] > 0).mean())
    correct = traces[traces["trace_correct"]]
    assert table.loc["correct", "lucky_guess_rate"] == pytest.approx(correct["lucky_guess"].mean())
    assert table.loc["incorrect", "lucky_guess_rate"] == 0
    assert table.loc["all", "drop_rate"] == pytest.approx((traces["n_drops"] > 0).mean())
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
                     dataset="d", trace_source="sampled", protocol={}, ks=[1], seed=0)
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

    _, events, traces = _run(seed=2)
    traces.to_parquet(tmp_path / "traces.parquet")
    events.to_parquet(tmp_path / "events.parquet")
    spikes = events.loc[events["kind"] == "spike", "event_id"]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"event_id": spikes, "label": ["insight"] * len(spikes)}).to_csv(labels, index=False)
    run = {"model": "m", "dataset": "d", "trace_source": "sampled", "key": "m/d"}
    out = tmp_path / "dynamics.csv"
    kwargs = dict(judge_paths={}, settings={"pass_at_k": [1, 3]}, prefixes={"mode": "fraction", "fractions": [0, 0.5, 1]},
                  seed=0, config={})
    dynamics_table_job([run], [str(tmp_path / "traces.parquet")], [str(tmp_path / "events.parquet")], str(out),
                       human_labels={"m/d": str(labels)}, **kwargs)
    table = pd.read_csv(out).set_index("traces")
    assert (table["label_source"] == "human").all()
    assert table.loc["all", "insight_rate"] == pytest.approx(table.loc["all", "spike_rate"])
    assert table.loc["all", "jump_rate"] == 0 and table.loc["all", "n_human_labels"] == len(spikes)
    assert (tmp_path / "dynamics.provenance.json").is_file()
    pd.DataFrame({"event_id": ["other/0/spike/3"], "label": ["jump"]}).to_csv(labels, index=False)
    with pytest.raises(ValueError, match="not events of this run"):
        dynamics_table_job([run], [str(tmp_path / "traces.parquet")], [str(tmp_path / "events.parquet")], str(out),
                           human_labels={"m/d": str(labels)}, **kwargs)


def test_tangent_and_flaw_rates_come_only_from_drop_labels(tmp_path):
    from cot_potential.rates import dynamics_table_job

    _, events, traces = _run(seed=3)
    drops = events.loc[events["kind"] == "drop", "event_id"].tolist()
    assert len(drops) >= 4
    labels = {e: ("tangent", "flaw", "other")[i % 3] for i, e in enumerate(drops)}
    traces.to_parquet(tmp_path / "traces.parquet")
    events.to_parquet(tmp_path / "events.parquet")
    path = tmp_path / "labels.csv"
    pd.DataFrame({"event_id": list(labels), "label": list(labels.values())}).to_csv(path, index=False)
    run = {"model": "m", "dataset": "d", "trace_source": "sampled", "key": "m/d"}
    out = tmp_path / "dynamics.csv"
    dynamics_table_job([run], [str(tmp_path / "traces.parquet")], [str(tmp_path / "events.parquet")], str(out),
                       human_labels={"m/d": str(path)}, judge_paths={}, settings={}, prefixes={}, seed=0, config={})
    row = pd.read_csv(out).set_index("traces").loc["all"]
    for name in ("tangent", "flaw"):
        labelled = events[events["event_id"].isin([e for e, lab in labels.items() if lab == name])]
        keys = labelled[["problem_id", "trace_id"]].drop_duplicates()
        assert row[f"{name}_rate"] == pytest.approx(len(keys) / len(traces))
        assert row[f"{name}_rate"] <= row["drop_rate"]
    assert row["drop_label_source"] == "human" and row["n_human_drop_labels"] == len(drops)
    # the spikes are not labelled: their split stays empty, the drops' does not
    assert row["label_source"] == "none" and np.isnan(row["insight_rate"])
    assert row["n_drops"] == len(drops)
