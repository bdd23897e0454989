"""Descriptive monotonicity: the fall below the running maximum, and its null by redrawing."""

import numpy as np
import pandas as pd
import pytest

from cot_potential.dynamics import DynamicsSettings, detect_events
from cot_potential.monotone import (grid_counts, isotonic_fit, null_share, null_shortfalls, shortfall,
                                    tolerance_suffix)
from cot_potential.stats import clopper_pearson


def test_shortfall_is_the_fall_below_the_running_maximum_so_a_slow_slide_adds_up():
    assert shortfall(np.array([0.1, 0.1, 0.4, 0.9])) == 0
    slide = np.array([0.8, 0.76, 0.72, 0.68, 0.64, 0.60])  # every step 0.04, 0.2 in all
    assert shortfall(slide) == pytest.approx(0.2)
    assert shortfall(np.array([0.2, 0.7, 0.5, 0.9, 0.85])) == pytest.approx(0.2)
    padded = np.array([[0.2, 0.5, 0.45, np.nan, np.nan], [0.9, 0.1, 0.95, 0.95, 0.9]])
    assert shortfall(padded) == pytest.approx([0.05, 0.8])


def test_isotonic_fit_is_the_weighted_least_squares_non_decreasing_curve():
    y = np.array([0.1, 0.5, 0.3, 0.2, 0.9])
    assert isotonic_fit(y, np.ones(5)) == pytest.approx([0.1, 1 / 3, 1 / 3, 1 / 3, 0.9])
    # weights: a heavy cut pulls the pooled block towards itself
    assert isotonic_fit([0.6, 0.2], [3, 1]) == pytest.approx([0.5, 0.5])
    rng = np.random.default_rng(0)
    for _ in range(20):
        values, weights = rng.random(9), rng.integers(1, 50, 9)
        fit = isotonic_fit(values, weights)
        assert np.all(np.diff(fit) >= -1e-12)
        assert np.dot(fit, weights) == pytest.approx(np.dot(values, weights))  # blocks keep their weighted mean
        # no other non-decreasing curve of the same blocks' kind does better than a nudge of it
        worse = np.sort(fit + rng.normal(0, 0.01, 9))
        assert np.dot(weights, (fit - values) ** 2) <= np.dot(weights, (worse - values) ** 2) + 1e-12


def _curve(counts, n=20, answer=None):
    rows = []
    for i, k in enumerate(counts):
        rows.append({"problem_id": "p", "trace_id": 0, "cut_index": i, "cut_fraction": i / (len(counts) - 1),
                     "n_samples": n, "n_correct": k, "potential": k / n, "grid_cut": True, "answer_offset": -1})
    if answer is not None:
        rows.insert(answer[0], {**rows[answer[0]], "cut_index": answer[0], "n_correct": answer[1],
                                "potential": answer[1] / n, "grid_cut": False, "answer_offset": 0})
        for i, row in enumerate(rows):
            row["cut_index"] = i
    df = pd.DataFrame(rows)
    df["ci_low"], df["ci_high"] = clopper_pearson(df["n_correct"], df["n_samples"])
    return df


def test_per_trace_monotone_is_descriptive_and_no_significant_drop_is_kept():
    _, slide = detect_events(_curve([100, 96, 92, 88, 84, 80], n=100))  # 0.04 a step, no test sees it
    assert not slide.iloc[0].monotone and slide.iloc[0].no_significant_drop
    assert slide.iloc[0].max_shortfall == pytest.approx(0.2)
    _, wiggle = detect_events(_curve([50, 55, 52, 60, 58, 70], n=100))  # falls of 0.03 and 0.02
    assert wiggle.iloc[0].monotone and wiggle.iloc[0].no_significant_drop
    _, strict = detect_events(_curve([50, 55, 52, 60, 58, 70], n=100), DynamicsSettings(monotone_tolerance=0.0))
    assert not strict.iloc[0].monotone
    # an answer cut (not on the grid) with a wild value does not count
    _, answer = detect_events(_curve([10, 12, 14, 16], answer=(2, 0)))
    assert answer.iloc[0].monotone and answer.iloc[0].max_shortfall == 0


def test_the_null_of_truly_monotone_curves_at_large_n_calls_almost_none_non_monotone():
    steep = [(np.array([0, 100, 300, 500, 700, 900, 1000]), np.full(7, 1000))]  # steps of 0.1-0.2 at N = 1000
    null = null_shortfalls(steep * 3, replicates=200, seed=1)
    assert null.shape == (200, 3)
    assert null_share(null, 0.05)[0] == 0
    flat = [(np.full(11, 10), np.full(11, 20))] * 50  # flat at 0.5, N = 20: noise falls below the max
    share, low, high = null_share(null_shortfalls(flat, replicates=200, seed=2), 0.1)
    assert share > 0.8 and low <= share <= high
    assert np.isnan(null_share(null, 0.1, chosen=np.zeros(3, bool))[0])


def test_grid_counts_follow_the_keys_and_leave_out_answer_cuts():
    pot = pd.concat([_curve([1, 5, 9], answer=(1, 0)), _curve([3, 4], n=10).assign(problem_id="q")])
    curves = grid_counts(pot, [("q", 0), ("p", 0), ("r", 0)])
    assert curves[0][0].tolist() == [3, 4] and curves[0][1].tolist() == [10, 10]
    assert curves[1][0].tolist() == [1, 5, 9]
    assert len(curves[2][0]) == 0


def test_tolerance_suffixes():
    assert [tolerance_suffix(t) for t in (0, 0.05, 0.1, 0.2)] == ["tol00", "tol05", "tol10", "tol20"]
