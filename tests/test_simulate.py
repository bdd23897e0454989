import numpy as np
import pandas as pd
import pytest

from cot_potential.simulate import KINDS, PlantedEvent, draw_counts, simulate_curves

GRID = [i / 20 for i in range(21)]
POTENTIAL_COLUMNS = ["problem_id", "trace_id", "cut_index", "cut_fraction", "n_samples", "n_correct",
                     "potential", "ci_low", "ci_high", "true_potential"]


def test_counts_follow_the_binomial_of_bernoulli_rollouts():
    rng = np.random.default_rng(0)
    p = np.full(20000, 0.3)
    counts = draw_counts(p, 16, rng)
    assert counts.min() >= 0 and counts.max() <= 16
    assert abs(counts.mean() - 16 * 0.3) < 0.05
    assert abs(counts.var() - 16 * 0.3 * 0.7) < 0.15
    assert (draw_counts([0.0, 1.0], 128, rng) == [0, 128]).all()
    with pytest.raises(ValueError):
        draw_counts([1.2], 4, rng)


def test_curves_have_the_potentials_columns_and_contiguous_cuts():
    pot, events = simulate_curves(200, GRID, n_samples=32, seed=1)
    assert set(POTENTIAL_COLUMNS) <= set(pot.columns)
    assert set(pot["kind"]) == set(KINDS)
    for _, curve in pot.groupby(["problem_id", "trace_id"]):
        assert list(curve["cut_index"]) == list(range(len(curve)))
        assert curve["cut_fraction"].is_monotonic_increasing
        assert curve["grid_cut"].sum() == len(GRID)
    assert pot["true_potential"].between(0, 1).all()
    assert (pot["potential"] == pot["n_correct"] / 32).all()
    assert ((pot["ci_low"] <= pot["potential"]) & (pot["potential"] <= pot["ci_high"])).all()
    assert set(events.columns) == set(PlantedEvent.__dataclass_fields__)


def test_planted_events_are_where_the_true_potential_changes():
    pot, events = simulate_curves(300, GRID, n_samples=64, seed=2, size=0.5, width=2)
    curves = {key: c.set_index("cut_index") for key, c in pot.groupby(["problem_id", "trace_id"])}
    for ev in events.itertuples():
        truth = curves[(ev.problem_id, ev.trace_id)]["true_potential"]
        change = truth[ev.end] - truth[ev.start]
        assert change == pytest.approx((-1 if ev.kind == "tangent" else 1) * ev.size, abs=1e-6)
        if ev.kind == "spike":
            assert change == pytest.approx(0.5, abs=1e-6) or ev.size > 0.8  # guesses jump to ~1
        if ev.kind == "tangent":
            later = truth[truth.index > ev.end]
            assert (later.max() >= truth[ev.start] - 1e-9) == ev.recovered
    none = pot[pot["kind"] == "none"]
    assert none.groupby(["problem_id", "trace_id"])["true_potential"].nunique().eq(1).all()
    assert not none["trace_correct"].any() and not none["answer_cut"].any()


def test_guesses_are_correct_traces_with_low_potential_at_their_answer_cut():
    pot, events = simulate_curves(100, GRID, n_samples=128, seed=3, kinds=["guess"])
    assert pot.groupby(["problem_id", "trace_id"])["trace_correct"].all().all()
    answer = pot[pot["answer_cut"]]
    assert len(answer) == 100 and (answer["answer_offset"] == 0).all()
    assert (answer["true_potential"] == 0.05).all()
    guesses = events[events["kind"] == "guess"]
    assert len(guesses) == 100 and len(events[events["kind"] == "spike"]) == 100
    merged = guesses.merge(answer, left_on=["problem_id", "trace_id", "start"],
                           right_on=["problem_id", "trace_id", "cut_index"])
    assert len(merged) == 100


def test_drift_makes_no_event_curves_rise_gently_and_seeds_repeat():
    pot, events = simulate_curves(50, GRID, n_samples=16, seed=4, kinds=["none"], drift=0.2)
    assert events.empty
    rise = pot.groupby(["problem_id", "trace_id"])["true_potential"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    assert np.allclose(rise, 0.2)
    again, _ = simulate_curves(50, GRID, n_samples=16, seed=4, kinds=["none"], drift=0.2)
    pd.testing.assert_frame_equal(pot, again)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="kinds"):
        simulate_curves(2, GRID, n_samples=4, seed=0, kinds=["blip"])
    with pytest.raises(ValueError, match="grid"):
        simulate_curves(2, [0, 0.5, 1], n_samples=4, seed=0)
    with pytest.raises(ValueError, match="size"):
        simulate_curves(2, GRID, n_samples=4, seed=0, size=0)
    with pytest.raises(ValueError):
        PlantedEvent("p", 0, "spike", 3, 3, 0.5)


def test_short_grids_work_for_kinds_that_fit():
    short = [0, 0.25, 0.5, 0.75, 1]
    pot, events = simulate_curves(20, short, n_samples=4, seed=0, kinds=["spike", "tangent"], recover_prob=0.0)
    assert len(events) == 20 and pot.groupby(["problem_id", "trace_id"]).size().eq(5 + 0).sum() > 0
    with pytest.raises(ValueError, match="tangent"):
        simulate_curves(2, short, n_samples=4, seed=0, kinds=["tangent"], recover_prob=0.5)
