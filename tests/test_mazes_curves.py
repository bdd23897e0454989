"""Drops, spikes and monotone curves of maze potentials, and the model comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cot_potential.mazes.curves import CurveSettings, compare, curve_shapes, holm, mean_curves, steps


def curve(counts, n=16, problem="p0", correct=True):
    return pd.DataFrame({
        "problem_id": problem, "trace_id": 0, "cut_index": range(len(counts)),
        "nominal_fraction": np.linspace(0, 1, len(counts)), "cut_fraction": np.linspace(0, 1, len(counts)),
        "n_correct": counts, "n_samples": n, "potential": [k / n for k in counts], "trace_correct": correct,
    })


def test_holm_matches_a_hand_computation():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]).tolist() == []


def test_a_clear_drop_and_a_clear_spike_are_found_small_wiggles_are_not():
    s = steps(curve([8, 9, 1, 15, 14]), CurveSettings(alpha=0.05, min_change=0.25))
    assert s["drop"].tolist() == [False, True, False, False]
    assert s["spike"].tolist() == [False, False, True, False]


def test_a_large_change_on_few_samples_is_not_significant():
    s = steps(curve([2, 0], n=2), CurveSettings())
    assert not s["drop"].any()  # 1.0 -> 0.0 on two samples each: p = 1/6 before any correction


def test_curve_shapes_and_comparison():
    flat = [curve([4, 5, 4, 6, 16], problem=f"m{i}") for i in range(6)]
    bumpy = [curve([12, 1, 14, 16, 16], problem=f"m{i}") for i in range(6)]
    shapes = pd.concat([
        curve_shapes(pd.concat(flat), CurveSettings()).assign(model="a", data="correct", dataset="d"),
        curve_shapes(pd.concat(bumpy), CurveSettings()).assign(model="b", data="swapped", dataset="d"),
    ])
    a = shapes[shapes["model"] == "a"]
    assert a["monotone"].all() and (a["n_spikes"] == 1).all()  # 6/16 -> 16/16 is a spike
    b = shapes[shapes["model"] == "b"]
    assert not b["monotone"].any() and (b["n_drops"] == 1).all()
    table = compare(shapes).set_index("model")
    assert table.loc["a", "monotone_rate"] == 1.0 and table.loc["b", "monotone_rate"] == 0.0
    assert table.loc["b", "p_monotone_vs_correct"] < 0.01  # 6/6 vs 0/6
    assert np.isnan(table.loc["a", "p_monotone_vs_correct"])  # the reference itself
    assert table.loc["a", "monotone_ci_low"] < 1.0 == table.loc["a", "monotone_ci_high"]


def test_mean_curves_by_nominal_fraction():
    means = mean_curves(pd.concat([curve([0, 16]), curve([16, 16], problem="p1")]))
    assert means["potential"].tolist() == [0.5, 1.0] and means["fraction"].tolist() == [0.0, 1.0]
