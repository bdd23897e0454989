"""The event detector against planted truth (fast, pure Python: simulated curves and counts)."""

import numpy as np
import pytest
from scipy import stats

from cot_potential.dynamics import DynamicsSettings, detect_events
from cot_potential.monotone import grid_counts, null_share, null_shortfalls
from cot_potential.power import power_table, score
from cot_potential.simulate import draw_counts, simulate_curves
from cot_potential.stats import clopper_pearson

GRID_5 = [i / 20 for i in range(21)]  # the paper's grid
GRID_10 = [i / 10 for i in range(11)]  # the embedded default's grid


@pytest.mark.parametrize("n", [16, 128])
@pytest.mark.parametrize("grid", [GRID_10, GRID_5], ids=["10pct", "5pct"])
@pytest.mark.parametrize(("correction", "drift"), [("holm", 0.0), ("holm", 0.2), ("bh", 0.0)])
def test_false_positive_rate_per_curve_stays_below_alpha_without_planted_events(n, grid, correction, drift):
    """Flat curves (every null holds) and gently rising ones: any event or any significant drop
    on a curve is a false positive; its rate over curves must not exceed alpha."""
    settings = DynamicsSettings(alpha=0.05, correction=correction)
    pot, planted = simulate_curves(1500, grid, n_samples=n, seed=n + len(grid), kinds=["none"], drift=drift)
    events, traces = detect_events(pot, settings)
    result = score(events, traces, planted, pot)["null"]
    assert result["n_curves"] == 1500
    assert result["fpr"] <= settings.alpha, result


@pytest.mark.parametrize("n", [64, 128])
def test_planted_events_well_above_delta_are_recovered(n):
    settings = DynamicsSettings()  # delta_up = delta_down = 0.2
    pot, planted = simulate_curves(1200, GRID_5, n_samples=n, seed=7, size=(0.45, 0.65), width=1)
    events, traces = detect_events(pot, settings)
    result = score(events, traces, planted, pot)
    for kind in ("spike", "tangent", "guess"):
        assert result[kind]["n_planted"] > 150, kind
        assert result[kind]["precision"] >= 0.95, (kind, result[kind])
        assert result[kind]["recall"] >= 0.95, (kind, result[kind])
    assert result["tangent"]["recovered_accuracy"] >= 0.95


def test_spikes_spread_over_two_steps_are_found_as_one_event():
    pot, planted = simulate_curves(400, GRID_5, n_samples=128, seed=8, kinds=["spike"], size=0.5, width=2)
    events, traces = detect_events(pot, DynamicsSettings(window=2))
    result = score(events, traces, planted, pot)["spike"]
    assert result["recall"] >= 0.95 and result["precision"] >= 0.95
    assert (traces["n_spikes"] <= 1).mean() >= 0.95  # not split into two


def test_a_grid_too_short_for_a_spike_has_power_rows_only_for_tangents():
    table = power_table([0.0, 0.5, 1.0], DynamicsSettings(), sizes=[0.5], ns=[16], n_curves=20, seed=1)
    assert list(table["kind"]) == ["tangent"] and (table["n_grid_cuts"] == 3).all()


def test_power_grows_with_effect_size_and_n():
    table = power_table(GRID_10, DynamicsSettings(), sizes=[0.1, 0.3, 0.6], ns=[16, 128], n_curves=150, seed=1)
    spikes = table[table["kind"] == "spike"].set_index(["n_samples", "size"])["recall"]
    assert spikes[(128, 0.6)] >= 0.95 and spikes[(16, 0.1)] <= 0.1
    assert spikes[(16, 0.3)] < spikes[(128, 0.3)]
    for n in (16, 128):
        assert spikes[(n, 0.1)] <= spikes[(n, 0.3)] <= spikes[(n, 0.6)]
    assert (table["fpr"] <= 0.05).all()
    assert {"recall_ci_low", "recall_ci_high", "n_grid_cuts"} <= set(table.columns)


@pytest.mark.parametrize("n", [16, 32, 64, 128])
def test_ci_coverage_is_at_least_95_percent_at_every_p_including_the_ends(n):
    """Exact coverage of the potentials' intervals, from the binomial pmf, on a grid of p that
    includes 1/N and 1 - 1/N; and the same seen on simulated Bernoulli rollouts."""
    k = np.arange(n + 1)
    low, high = clopper_pearson(k, np.full_like(k, n))
    grid = [1 / n, 1 - 1 / n, 0.5 / n, 1 - 0.5 / n, *np.linspace(0.005, 0.995, 100)]
    for p in grid:
        covered = (low <= p) & (p <= high)
        assert stats.binom.pmf(k, n, p)[covered].sum() >= 0.95, p
    rng = np.random.default_rng(n)
    draws = 4000
    for p in (1 / n, 0.5, 1 - 1 / n):
        counts = draw_counts(np.full(draws, p), n, rng)
        lo, hi = clopper_pearson(counts, np.full(draws, n))
        seen = np.mean((lo <= p) & (p <= hi))
        assert seen >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / draws), (p, seen)


def _shortfalls_and_null(pot):
    """Every curve's observed shortfall (from the detector) and the run's null redraws."""
    _, traces = detect_events(pot, DynamicsSettings())
    curves = grid_counts(pot, zip(traces["problem_id"], traces["trace_id"]))
    return traces["max_shortfall"].to_numpy(), null_shortfalls(curves, replicates=200, seed=1)


@pytest.mark.parametrize("n", [20, 128])
@pytest.mark.parametrize("grid", [GRID_10, GRID_5], ids=["10pct", "5pct"])
def test_the_descriptive_monotone_rate_of_monotone_truths_matches_its_simulated_null(n, grid):
    """Curves whose truth never goes down (flat, drifting up, with a spike): the share called
    non-monotone at each tolerance is what the run's null predicts, within 0.16 (the null
    redraws from isotonic fits of the noisy curves, not from the truth; the largest gap seen
    over 4 seeds x these cells was 0.126)."""
    for kinds, drift in ((["none"], 0.0), (["none"], 0.2), (["spike"], 0.0)):
        pot, _ = simulate_curves(300, grid, n_samples=n, seed=n + len(grid), kinds=kinds, drift=drift)
        shortfalls, null = _shortfalls_and_null(pot)
        for tolerance in (0.0, 0.05, 0.1, 0.2):
            observed = float(np.mean(shortfalls > tolerance + 1e-12))
            share, low, high = null_share(null, tolerance)
            assert 0 <= low <= high <= 1
            assert abs(observed - share) <= 0.16, (kinds, drift, tolerance, observed, share)


@pytest.mark.parametrize(("n", "grid", "tolerance"), [(128, GRID_10, 0.1), (128, GRID_5, 0.2), (20, GRID_10, 0.2)])
def test_planted_drops_well_above_the_tolerance_are_non_monotone_beyond_the_null(n, grid, tolerance):
    pot, _ = simulate_curves(300, grid, n_samples=n, seed=5, kinds=["tangent"], size=(0.45, 0.65))
    shortfalls, null = _shortfalls_and_null(pot)
    observed = float(np.mean(shortfalls > tolerance + 1e-12))
    assert observed > null_share(null, tolerance)[2] and observed >= 0.95
