"""Sequential estimation: exact bias and coverage at every p of a grid, and why naive stopping fails."""

import numpy as np
import pytest

from cot_potential.sequential import StoppingRule, confidence_sequence
from cot_potential.stats import clopper_pearson

P_GRID = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0]
RULES = [
    StoppingRule(),  # the default: batch 16, min 16, max 128, +-0.1
    StoppingRule(batch=8, min_n=24, max_n=64, half_width=0.15, level=0.9),
    StoppingRule(batch=10, min_n=10, max_n=128, half_width=0.05),  # max_n not a multiple of batch
]


def test_confidence_sequence_contains_the_estimate_and_is_wider_than_the_fixed_n_interval():
    k, n = np.array([0, 3, 8, 16, 40]), np.array([16, 16, 16, 16, 128])
    low, high = confidence_sequence(k, n)
    cp_low, cp_high = clopper_pearson(k, n)
    assert np.all(low <= k / n) and np.all(k / n <= high)
    assert np.all(low <= cp_low + 1e-12) and np.all(high >= cp_high - 1e-12)
    assert confidence_sequence(0, 0) == (0.0, 1.0) or tuple(map(float, confidence_sequence(0, 0))) == (0.0, 1.0)
    wide, narrow = confidence_sequence([8, 64], [16, 128])
    assert (narrow - wide)[1] < (narrow - wide)[0]


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_the_estimate_is_unbiased_and_the_interval_covers_at_every_p(rule):
    """Exact: the stopping distribution is computed by path counting, no simulation noise."""
    for p in P_GRID:
        oc = rule.exact_operating_characteristics(p)
        assert oc["total"] == pytest.approx(1.0, abs=1e-9), p
        assert abs(oc["bias"]) < 1e-9, (p, oc)
        assert oc["coverage"] >= rule.level, (p, oc)
        assert rule.min_n <= oc["mean_n"] <= rule.max_n


def test_the_rule_stops_early_only_where_the_potential_is_pinned_down():
    rule = StoppingRule()
    assert rule.exact_operating_characteristics(0.0)["mean_n"] < 48
    assert rule.exact_operating_characteristics(0.5)["mean_n"] == pytest.approx(128)
    assert not rule.stops(0, 16) and rule.stops(64, 128) and rule.stops(0, 32)


def test_the_unbiased_estimate_in_a_simulation_of_the_sampler():
    """Independent of the path counting: run the rule on Bernoulli draws."""
    rule, p, rng = StoppingRule(), 0.1, np.random.default_rng(3)
    est, mle = [], []
    for _ in range(6000):
        k = n = 0
        while True:
            k += int(rng.binomial(rule.next_batch(n), p))
            n += rule.next_batch(n)
            if rule.stops(k, n):
                break
        est.append(rule.estimate(k, n))
        mle.append(k / n)
    se = np.std(est) / np.sqrt(len(est))
    assert abs(np.mean(est) - p) < 4 * se
    assert np.mean(mle) - p < -0.006  # k/n at the stopping time is biased toward 0


def test_naive_stopping_on_a_fixed_n_interval_biases_and_under_covers():
    """The failure the rule avoids: look after every draw, stop once the Clopper-Pearson
    (fixed-n, exact) half-width <= 0.1, report k/n with that interval."""
    rng = np.random.default_rng(5)
    kk, nn = np.meshgrid(np.arange(129), np.arange(129), indexing="ij")
    low_t, high_t = clopper_pearson(np.minimum(kk, nn), np.maximum(nn, 1))
    stop_t = (nn >= 8) & ((high_t - low_t) / 2 <= 0.1) | (nn >= 128)
    worst_cover, worst_bias = 1.0, 0.0
    for p in (0.1, 0.2):
        k, n = np.zeros(20000, int), np.zeros(20000, int)
        active = np.ones(20000, bool)
        while active.any():
            k[active] += rng.random(active.sum()) < p
            n[active] += 1
            active &= ~stop_t[k, n]
        cover = (low_t[k, n] <= p) & (p <= high_t[k, n])
        worst_cover = min(worst_cover, float(cover.mean()))
        worst_bias = max(worst_bias, abs(float(np.mean(k / n)) - p))
    assert worst_cover < 0.95 and worst_bias > 0.01, (worst_cover, worst_bias)
