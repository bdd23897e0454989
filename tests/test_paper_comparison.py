"""Is a run comparable with the paper's numbers, and why (dynamics_report.paper_comparison)?"""

import math

import pandas as pd

from cot_potential.dynamics_report import PAPER, paper_comparison

THRESHOLDS = {"alpha": 0.05, "correction": "holm", "window": 2, "spike_min_rise": 0.2, "tangent_min_drop": 0.2}


def run(**changes):
    """The "all" row of a run measured like the paper's: Qwen2.5-7B-Instruct on MATH-500, N = 128,
    cuts every 5%, descriptive monotone, spikes and drops labelled by people."""
    row = {"model": "qwen2.5-7b-instruct", "weights": "Qwen/Qwen2.5-7B-Instruct", "dataset": "math500",
           "trace_source": "sampled", "traces": "all", "n_samples": 128, "cut_grid": PAPER["cut_grid"],
           "n_grid_cuts": 21, "monotone_tolerance": 0.05, "label_source": "human", "drop_label_source": "human",
           **THRESHOLDS}
    for name in PAPER["rates"]:
        row.update({name: 0.3, f"{name}_ci_low": 0.2, f"{name}_ci_high": 0.4})
    row.update(changes)
    return row


def compare(*rows):
    return paper_comparison(pd.DataFrame([*rows, {**rows[0], "traces": "correct"}]))


def test_a_run_measured_like_the_paper_is_comparable_and_says_so():
    [c] = compare(run())
    assert c["comparable"] and not c["reasons"]
    assert all(r["comparable"] and not r["why"] for r in c["rates"])
    assert c["summary"].startswith("Comparable with the paper's Qwen2.5-7B-Instruct numbers.")
    assert "the paper publishes none" in c["summary"] and "δ_up = 0.2" in c["summary"] and "α = 0.05 per curve (holm)" in c["summary"]
    assert {ch["aspect"] for ch in c["checks"]} == {"model", "dataset", "N", "grid"}


def test_a_qwen3_aime_run_is_not_comparable_with_qwen25_7b_even_at_the_papers_protocol():
    [c] = compare(run(model="qwen3-0.6b", weights="Qwen/Qwen3-0.6B", dataset="aime2024"))
    assert not c["comparable"] and not any(r["comparable"] for r in c["rates"])
    assert c["reasons"] == ["the model is Qwen/Qwen3-0.6B, not Qwen2.5-7B-Instruct"]
    assert c["summary"].startswith("Not comparable with the paper's Qwen2.5-7B-Instruct numbers: the model is Qwen/Qwen3-0.6B")


def test_every_protocol_difference_is_named():
    [c] = compare(run(model="smollm2", weights="smollm2-135m-instruct", dataset="arith", n_samples=20,
                      cut_grid="fraction:0-1/0.1 (11)"))
    assert c["reasons"] == ["the model is smollm2-135m-instruct, not Qwen2.5-7B-Instruct",
                            "the dataset arith is not one of the paper's (aime2024, aime2025, math500)",
                            "N = 20, not 128", "the grid is fraction:0-1/0.1 (11), not fraction:0-1/0.05 (21)"]


def test_the_model_is_recognised_by_its_weights_or_its_name_and_aime_by_its_short_name():
    [by_weights] = compare(run(model="big-qwen", dataset="AIME-24"))
    [by_name] = compare(run(weights="/models/local-copy"))
    assert by_weights["comparable"] and by_name["comparable"]


def test_a_rate_needs_the_papers_definition_labels_and_descriptive_monotone():
    [c] = compare(run(drop_label_source="none", monotone_tolerance=math.nan))
    assert c["comparable"]  # the run's protocol is the paper's ...
    rates = {r["name"]: r for r in c["rates"]}
    assert rates["insight"]["comparable"]  # ... and its spikes are labelled
    assert not rates["tangent"]["comparable"] and "no labels of the drops" in rates["tangent"]["why"]
    assert not rates["monotone"]["comparable"] and "no significant drop" in rates["monotone"]["why"]
    [unlabelled] = compare(run(label_source="none"))
    assert "no labels of the spikes" in {r["name"]: r for r in unlabelled["rates"]}["insight"]["why"]
    [split] = compare(run(monotone_tolerance=math.nan, no_significant_drop_rate=0.5))
    assert {r["name"]: r for r in split["rates"]}["monotone"]["comparable"]  # the test-based notion has its own column
    [no_drops] = compare(run(drop_label_source="no_drops"))  # nothing to label: a rate of 0 that means 0
    assert {r["name"]: r for r in no_drops["rates"]}["tangent"]["comparable"]
