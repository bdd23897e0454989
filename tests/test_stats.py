import numpy as np
import pytest
from scipy import stats

from cot_potential.stats import clopper_pearson


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
