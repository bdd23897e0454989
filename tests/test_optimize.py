import numpy as np
import pandas as pd
import pytest

from cot_potential.optimize import OptimizeSettings, chunk_of, compare


def test_a_sentence_chunk_ends_after_the_first_sentence_or_line():
    pieces = ["We", " add", " 3", ".", " Then", " 4", "."]
    ids = tuple(range(len(pieces)))
    assert chunk_of(ids, pieces, "sentence") == 4
    assert chunk_of(ids, pieces, "tokens") == 7
    assert chunk_of(ids[:3], pieces[:3], "sentence") == 3  # no boundary: the whole candidate
    assert chunk_of((1, 2), ["a\n", "b"], "sentence") == 1


def test_settings_ignore_the_run_keys():
    assert OptimizeSettings.from_config({"enabled": True, "runs": [], "candidates": 3}).candidates == 3


def test_comparison_at_equal_generated_tokens():
    ids = ["a", "b"]
    optimized = pd.DataFrame({"problem_id": ids, "correct": [True, False], "tokens_spent": [400, 800],
                              "n_steps": [3, 5]})
    steps = pd.DataFrame({"problem_id": ["a", "a", "b"], "chosen": [True, False, True],
                          "estimate": [0.75, 0.25, 0.5], "fresh_estimate": [0.5, np.nan, 0.25]})
    optimized_dynamics = pd.DataFrame({"problem_id": ids, "monotone": [True, True]})
    potentials = pd.DataFrame({"problem_id": ids, "cut_index": [0, 0], "n_samples": [16, 16],
                               "n_correct": [4, 0], "mean_completion_tokens": [40.0, 50.0]})
    traces = pd.DataFrame({"problem_id": ids, "correct": [True, False], "n_tokens": [40, 60]})
    dynamics = pd.DataFrame({"problem_id": ids, "monotone": [False, True]})
    table = compare(optimized, steps, optimized_dynamics, potentials, traces, dynamics, model="m", dataset="d",
                    seed=0).set_index("method")
    assert list(table.index) == ["ordinary", "optimized", "best_of_n"]
    assert table.loc["ordinary", "accuracy"] == 0.5 and table.loc["ordinary", "monotone_rate"] == 0.5
    assert table.loc["optimized", "monotone_rate"] == 1.0 and table.loc["optimized", "tokens_per_problem"] == 600
    assert table.loc["optimized", "winners_curse_gap"] == pytest.approx(0.625 - 0.375)
    # best-of-n: a gets n = 400 / 40 = 10 of its 16 samples (4 correct), b gets 16 (capped; none correct)
    from cot_potential.rates import pass_at_k

    assert table.loc["best_of_n", "best_of_n"] == 13
    assert table.loc["best_of_n", "accuracy"] == pytest.approx((pass_at_k(16, 4, 10) + 0) / 2)
    assert table.loc["best_of_n", "tokens_per_problem"] == pytest.approx((10 * 40 + 16 * 50) / 2)
