import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cot_potential.dynamics import (DynamicsSettings, adjust, adjust_by_group, detect_events, drop_pvalues,
                                    rise_pvalues)
from cot_potential.stats import clopper_pearson


def curve(counts, n=128, *, correct=True, problem="p", trace=0, answer=None, offsets=None):
    """A potentials table for one trace: ``counts`` correct out of ``n`` at each grid cut;
    ``answer=(position, count)`` inserts an answer cut (offset 0) before grid cut ``position``."""
    rows = [{"cut_fraction": i / (len(counts) - 1), "n_correct": k, "grid_cut": True, "answer_offset": -1}
            for i, k in enumerate(counts)]
    if answer is not None:
        pos, k = answer
        rows.insert(pos, {"cut_fraction": (rows[pos - 1]["cut_fraction"] + rows[pos]["cut_fraction"]) / 2,
                          "n_correct": k, "grid_cut": False, "answer_offset": 0})
    df = pd.DataFrame(rows)
    df["problem_id"], df["trace_id"], df["cut_index"] = problem, trace, range(len(df))
    df["n_samples"] = n
    df["potential"] = df["n_correct"] / n
    df["ci_low"], df["ci_high"] = clopper_pearson(df["n_correct"], df["n_samples"])
    df["trace_correct"] = correct
    df["char_offset"] = df["cut_index"] * 10
    df["cut_token"] = df["cut_index"] * 3
    df["answer_token"] = -1
    return df


def test_rise_and_drop_pvalues_are_one_sided_fisher():
    k1, n1, k2, n2 = np.array([3, 10, 0]), np.array([16, 32, 8]), np.array([12, 14, 8]), np.array([16, 32, 8])
    rise = rise_pvalues(k1, n1, k2, n2)
    drop = drop_pvalues(k1, n1, k2, n2)
    for i in range(3):
        table = [[k1[i], k2[i]], [n1[i] - k1[i], n2[i] - k2[i]]]
        assert rise[i] == pytest.approx(stats.fisher_exact(table, alternative="less").pvalue)
        assert drop[i] == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue)
    assert rise[0] < 0.01 < drop[0]


def test_boschloo_is_at_least_as_powerful_and_points_the_same_way():
    args = (np.array([3, 9]), np.array([16, 16]), np.array([12, 4]), np.array([16, 16]))
    fisher, boschloo = rise_pvalues(*args), rise_pvalues(*args, test="boschloo")
    assert boschloo[0] <= fisher[0] < 0.01 and boschloo[1] > 0.5


def test_holm_and_bh_adjustments():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert np.allclose(adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    assert np.allclose(adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    tests = pd.DataFrame({"problem_id": ["a"] * 4 + ["b"] * 2, "trace_id": 0,
                          "p": [*p, 0.2, 0.01]}).sample(frac=1, random_state=0)
    for method in ("holm", "bh"):
        grouped = adjust_by_group(tests, method)
        for pid, group in tests.assign(adj=grouped).groupby("problem_id"):
            assert np.allclose(group["adj"], adjust(group["p"].to_numpy(), method))


def test_a_clear_rise_is_one_spike_with_its_text_span():
    pot = curve([13, 12, 14, 13, 115, 118, 116])
    text = "".join(f"<{i}>".ljust(10, ".") for i in range(7))
    events, traces = detect_events(pot, texts={("p", 0): text})
    assert list(events["kind"]) == ["spike"]
    spike = events.iloc[0]
    assert (spike.cut_start, spike.cut_end) == (3, 4)
    assert spike.potential_before == pytest.approx(13 / 128) and spike.size > 0.7 and spike.p_value < 1e-10
    assert spike.span_text == text[30:40]
    assert traces.iloc[0].monotone and traces.iloc[0].n_spikes == 1 and not traces.iloc[0].lucky_guess


def test_small_or_noisy_changes_are_no_events():
    flat = curve([64, 60, 68, 62, 66, 63, 65])
    small = curve([40, 44, 48, 52, 56, 60, 64], problem="q")  # +0.03 a step
    events, traces = detect_events(pd.concat([flat, small]))
    assert events.empty and traces["monotone"].all()
    wide = curve([20, 21, 40, 60, 80, 100, 101], problem="r")  # steady 0.16 a step: no single jump
    events, _ = detect_events(wide, DynamicsSettings(window=1, spike_min_rise=0.2))
    assert events.empty


def test_a_drop_that_recovers_is_a_drop_and_a_recovery_not_a_spike():
    pot = curve([100, 102, 101, 30, 28, 99, 100, 101])
    events, traces = detect_events(pot)
    assert sorted(events["kind"]) == ["drop", "recovery"]
    drop = events[events["kind"] == "drop"].iloc[0]
    assert (drop.cut_start, drop.cut_end) == (2, 3) and drop.recovered and drop.recovery_cut == 5
    assert not traces.iloc[0].monotone and traces.iloc[0].n_spikes == 0
    assert traces.iloc[0].n_drops == 1 and traces.iloc[0].n_drops_recovered == 1


def test_a_drop_that_stays_is_an_unrecovered_drop_and_a_rise_past_it_is_a_spike():
    stays = curve([100, 101, 30, 29, 31, 30], correct=False)
    events, _ = detect_events(stays)
    assert list(events["kind"]) == ["drop"] and not events.iloc[0].recovered
    beyond = curve([60, 61, 10, 12, 125, 126], problem="q")
    events, _ = detect_events(beyond)
    assert sorted(events["kind"]) == ["drop", "spike"]


def test_a_small_significant_drop_breaks_monotonicity_without_a_drop_event():
    pot = curve([120, 121, 122, 96, 95, 96], n=128)  # -0.2 is below delta_down = 0.3
    events, traces = detect_events(pot, DynamicsSettings(tangent_min_drop=0.3))
    assert events.empty and not traces.iloc[0].no_significant_drop and not traces.iloc[0].monotone


def test_lucky_guess_needs_a_correct_trace_a_hard_problem_and_low_potential_before_the_answer():
    guess = curve([0, 1, 0, 1, 15, 16], n=16, answer=(4, 0))
    events, traces = detect_events(guess)
    assert "lucky_guess" in set(events["kind"]) and traces.iloc[0].lucky_guess
    row = events[events["kind"] == "lucky_guess"].iloc[0]
    assert row.cut_start == 4 and row.cut_end == 5 and row.p_value == pytest.approx(0.65 ** 16)
    wrong = curve([0, 1, 0, 1, 15, 16], n=16, answer=(4, 0), correct=False)
    supported = curve([0, 1, 8, 12, 15, 16], n=16, answer=(4, 13))
    easy = curve([14, 1, 0, 1, 15, 16], n=16, answer=(4, 0))
    no_cut = curve([0, 1, 0, 1, 15, 16], n=16)
    for other in (wrong, supported, easy, no_cut):
        _, traces = detect_events(other)
        assert not traces.iloc[0].lucky_guess
    assert not detect_events(no_cut)[1].iloc[0].guess_evaluable


def test_answer_cuts_are_not_part_of_the_grid_tests():
    pot = curve([64, 64, 64, 64], answer=(2, 0))  # a wild value at the answer cut only
    events, traces = detect_events(pot)
    assert events.empty and traces.iloc[0].n_grid_cuts == 4 and traces.iloc[0].monotone


def test_tables_without_the_optional_columns_work_and_missing_ones_are_named():
    pot = curve([10, 10, 120, 120]).drop(columns=["grid_cut", "answer_offset", "char_offset", "cut_token",
                                                   "answer_token", "trace_correct"])
    events, traces = detect_events(pot)
    assert list(events["kind"]) == ["spike"] and not traces.iloc[0].guess_evaluable
    with pytest.raises(ValueError, match="n_correct"):
        detect_events(pot.drop(columns=["n_correct"]))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="correction"):
        DynamicsSettings(correction="bonferroni")
    assert DynamicsSettings.from_config({"alpha": 0.01, "pass_at_k": [1]}).alpha == 0.01
