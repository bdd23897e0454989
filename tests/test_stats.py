import numpy as np
import pytest
from scipy import stats

from cot_potential.stats import clopper_pearson, cluster_clopper_pearson, cluster_rate


def test_clopper_pearson_known_values():
    low, high = clopper_pearson([0, 16, 8], [16, 16, 16])
    assert low[0] == 0 and np.isclose(high[0], 0.2059, atol=1e-4)
    assert high[1] == 1 and np.isclose(low[1], 0.7941, atol=1e-4)
    expected = stats.binomtest(8, 16).proportion_ci(method="exact")
    assert np.isclose(low[2], expected.low) and np.isclose(high[2], expected.high)


def test_no_samples_gives_the_uninformative_interval():
    low, high = clopper_pearson([0], [0])
    assert low[0] == 0 and high[0] == 1


def test_exact_coverage_is_at_least_nominal_at_every_p():
    """Coverage computed exactly from the binomial pmf, on a grid including 1/N and 1-1/N."""
    n = 16
    k = np.arange(n + 1)
    low, high = clopper_pearson(k, np.full_like(k, n))
    for p in [1 / n, 1 - 1 / n, *np.linspace(0.001, 0.999, 199)]:
        covered = (low <= p) & (p <= high)
        assert stats.binom.pmf(k, n, p)[covered].sum() >= 0.95 - 1e-12, p


def test_exact_mcnemar_counts_only_the_discordant_pairs():
    from cot_potential.stats import mcnemar_exact

    # 0 lost, 5 gained: two-sided exact p = 2 * 0.5**5
    before = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    after = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert abs(mcnemar_exact(before, after) - 0.0625) < 1e-12
    assert mcnemar_exact(after, before) == mcnemar_exact(before, after)
    # concordant pairs change nothing; no discordant pair: no evidence at all
    assert mcnemar_exact(before + [1] * 50, after + [1] * 50) == mcnemar_exact(before, after)
    assert mcnemar_exact([1, 0], [1, 0]) == 1.0
    assert abs(mcnemar_exact([1] * 3 + [0] * 3, [0] * 3 + [1] * 3) - 1.0) < 1e-12


def _clustered_draws(rate, correlation, n_traces, per_problem, replicates, rng):
    """Counts of ``replicates`` tables of traces clustered in problems: per problem a
    Beta-distributed own rate (mean ``rate``, intra-problem correlation ``correlation``) and
    binomial traces; ``per_problem`` an int or a (low, high) range drawn per problem."""
    if isinstance(per_problem, int):
        sizes = np.full((replicates, n_traces // per_problem), per_problem)
    else:
        draws = rng.integers(per_problem[0], per_problem[1] + 1, size=(replicates, n_traces))
        end = np.cumsum(draws, axis=1)
        sizes = np.clip(n_traces - (end - draws), 0, draws)  # the last problem takes what is left
    if correlation == 0:
        own = np.full(sizes.shape, rate)
    else:
        spread = 1 / correlation - 1
        own = rng.beta(rate * spread, (1 - rate) * spread, size=sizes.shape)
    return rng.binomial(sizes, own), sizes


def test_cluster_interval_covers_clustered_rates_in_every_cell():
    """>= 0.94 coverage by simulation in every cell: 1-4 traces per problem, 12-60 traces,
    rates near 0, 1/2 and near 1, traces of a problem independent or correlated (0.5)."""
    rng = np.random.default_rng(19)
    replicates = 2000
    worst = []
    for rate in (0.02, 0.05, 0.5, 0.95):
        for correlation in (0.0, 0.5):
            for n_traces in (12, 24, 60):
                for per_problem in (1, 2, 4, (1, 4)):
                    y, m = _clustered_draws(rate, correlation, n_traces, per_problem, replicates, rng)
                    _, low, high = cluster_clopper_pearson(y, m)
                    assert (low < high).all()  # never a point
                    coverage = np.mean((low <= rate) & (rate <= high))
                    worst.append((coverage, rate, correlation, n_traces, per_problem))
    assert min(worst)[0] >= 0.94, sorted(worst)[:5]


def test_cluster_interval_at_the_ends_is_no_point_and_no_narrower_than_one_per_problem():
    for per in (1, 3):
        for observed in (0, 1):
            n_problems = 8
            sizes = np.full(n_problems, per)
            rate, low, high = cluster_rate(observed * sizes, sizes)
            assert rate == observed and low < high
            cp_low, cp_high = clopper_pearson(observed * n_problems, n_problems)
            assert high >= cp_high - 1e-12 and low <= cp_low + 1e-12
    # one trace per problem: independent traces, the interval is Clopper-Pearson itself
    y = np.array([1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])
    rate, low, high = cluster_rate(y, np.ones_like(y))
    cp_low, cp_high = clopper_pearson(5, 12)
    assert rate == 5 / 12 and np.isclose(low, cp_low) and np.isclose(high, cp_high)
    assert np.isnan(cluster_rate([0, 0], [0, 0])[0])  # no problem present


def test_correlated_traces_widen_the_interval():
    """The same 12 of 40 traces: spread over problems vs. concentrated in 3 problems."""
    sizes = np.full(10, 4)
    spread = cluster_rate(np.array([2, 1, 1, 2, 1, 1, 1, 1, 1, 1]), sizes)
    clustered = cluster_rate(np.array([4, 4, 4, 0, 0, 0, 0, 0, 0, 0]), sizes)
    assert spread[0] == clustered[0] == 0.3
    assert clustered[2] - clustered[1] > spread[2] - spread[1]


def test_fisher_greater_matches_scipys_one_sided_test():
    from scipy.stats import fisher_exact

    from cot_potential.stats import fisher_greater

    cases = [(5, 10, 1, 10), (0, 16, 0, 16), (12, 16, 0, 64), (3, 8, 5, 8)]
    got = fisher_greater(*map(list, zip(*cases)))
    for (k1, n1, k0, n0), p in zip(cases, got):
        assert p == pytest.approx(fisher_exact([[k1, n1 - k1], [k0, n0 - k0]], alternative="greater").pvalue)


def test_holm_per_row_with_missing_tests():
    from cot_potential.stats import holm

    adjusted = holm(np.array([[0.01, 0.04, 0.03, np.nan], [0.5, 0.001, 0.02, 0.2]]), axis=1)
    assert np.allclose(adjusted[0, :3], [0.03, 0.06, 0.06]) and np.isnan(adjusted[0, 3])
    assert np.allclose(adjusted[1], [0.5, 0.004, 0.06, 0.4])


def test_exact_mcnemar_from_counts_matches_the_paired_form():
    from scipy.stats import binomtest

    from cot_potential.stats import mcnemar_exact, mcnemar_from_counts

    assert mcnemar_from_counts(3, 9) == pytest.approx(mcnemar_exact([1] * 3 + [0] * 9, [0] * 3 + [1] * 9))
    assert mcnemar_from_counts([5, 0, 3, 9], [0, 0, 3, 2]).tolist() == pytest.approx(
        [binomtest(5, 5).pvalue, 1.0, 1.0, binomtest(9, 11).pvalue])
