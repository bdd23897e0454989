"""Monotone curves and spikes of maze potentials (the dynamics stage's events), compared by model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cot_potential.dynamics import DynamicsSettings, detect_events
from cot_potential.mazes.curves import compare, curve_shapes, mean_curves


def curve(counts, n=16, problem="p0", correct=True):
    return pd.DataFrame({
        "problem_id": problem, "trace_id": 0, "cut_index": range(len(counts)),
        "nominal_fraction": np.linspace(0, 1, len(counts)), "cut_fraction": np.linspace(0, 1, len(counts)),
        "n_correct": counts, "n_samples": n, "potential": [k / n for k in counts],
        "ci_high": 1.0, "trace_correct": correct,
    })


def shapes_of(curves, **labels):
    _, traces = detect_events(pd.concat(curves), DynamicsSettings())
    return curve_shapes(traces).assign(**labels)


def test_shapes_and_comparison_from_the_dynamics_detector():
    flat = [curve([4, 5, 4, 6, 16], problem=f"m{i}") for i in range(6)]
    bumpy = [curve([12, 1, 14, 16, 16], problem=f"m{i}") for i in range(6)]
    shapes = pd.concat([shapes_of(flat, model="a", data="correct", dataset="d"),
                        shapes_of(bumpy, model="b", data="swapped", dataset="d")])
    a = shapes[shapes["model"] == "a"]
    assert a["monotone"].all() and (a["n_spikes"] == 1).all()  # 6/16 -> 16/16 is a spike
    b = shapes[shapes["model"] == "b"]
    assert not b["monotone"].any() and (b["n_drops"] == 1).all()
    table = compare(shapes).set_index("model")
    assert table.loc["a", "monotone_rate"] == 1.0 and table.loc["b", "monotone_rate"] == 0.0
    assert table.loc["b", "drops_per_curve"] == 1.0
    assert table.loc["b", "p_monotone_vs_correct"] < 0.01  # 6/6 vs 0/6
    assert np.isnan(table.loc["a", "p_monotone_vs_correct"])  # the reference itself
    assert table.loc["a", "monotone_ci_low"] < 1.0 == table.loc["a", "monotone_ci_high"]


def test_a_large_change_on_few_samples_is_neither_a_spike_nor_a_drop():
    _, traces = detect_events(curve([2, 0, 2], n=2), DynamicsSettings())
    shape = curve_shapes(traces).iloc[0]
    # 1.0 -> 0.0 on two samples: p = 1/6, no significant drop; described, the curve does fall
    assert traces.iloc[0]["no_significant_drop"] and shape["n_spikes"] == 0 and shape["n_drops"] == 0
    assert not shape["monotone"]


def test_a_summary_without_the_compared_columns_is_refused():
    with pytest.raises(ValueError, match="n_drops"):
        curve_shapes(pd.DataFrame({"problem_id": ["p"], "trace_id": [0], "monotone": [True]}))


def test_mean_curves_by_nominal_fraction():
    means = mean_curves(pd.concat([curve([0, 16]), curve([16, 16], problem="p1")]))
    assert means["potential"].tolist() == [0.5, 1.0] and means["fraction"].tolist() == [0.0, 1.0]
