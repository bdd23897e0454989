"""Statistics on counts: binomial confidence intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats


def clopper_pearson(k, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval for k successes in n trials, vectorised.

    Chosen over Wilson/Jeffreys because its coverage is >= the nominal level at *every* p,
    including p near 0 and 1 where potential curves spend much of their time; n = 0 gives
    the uninformative [0, 1].
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    low = np.where(n > 0, np.nan_to_num(low, nan=0.0), 0.0)
    high = np.where(n > 0, np.nan_to_num(high, nan=1.0), 1.0)
    return low, high


def bootstrap_ratio(numerator, denominator=None, *, level: float = 0.95, n_boot: int = 2000,
                    seed: int = 0) -> tuple[float, float, float]:
    """Estimate and percentile-bootstrap CI of ``sum(num) / sum(den)`` over units (problems).

    Resampling whole problems (not samples or traces) respects that curves of one problem are
    correlated. With ``denominator=None`` this is the mean of ``numerator``. Units with a zero
    denominator (e.g. problems that are not in the subset) count as absent. Returns NaNs when
    no unit has a denominator.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.ones_like(num) if denominator is None else np.asarray(denominator, dtype=float)
    if num.shape != den.shape:
        raise ValueError("numerator and denominator need one value per unit")
    if den.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    estimate = num.sum() / den.sum()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(num), size=(n_boot, len(num)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = num[picks].sum(axis=1) / den[picks].sum(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    alpha = 1.0 - level
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return float(estimate), float(low), float(high)


def mcnemar_exact(before, after) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes (the same items twice).

    Only discordant pairs count: b items went from 1 to 0, c from 0 to 1; under the null each
    discordant pair goes either way with probability 1/2, so the p-value is a two-sided
    binomial test of b in b + c (1.0 when there is no discordant pair).
    """
    before = np.asarray(before, dtype=bool)
    after = np.asarray(after, dtype=bool)
    if before.shape != after.shape:
        raise ValueError("McNemar's test needs one before and one after per item")
    lost, gained = int((before & ~after).sum()), int((~before & after).sum())
    if lost + gained == 0:
        return 1.0
    return float(stats.binomtest(lost, lost + gained, 0.5).pvalue)


def cluster_clopper_pearson(successes, sizes, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rate ``sum(successes) / sum(sizes)`` of units clustered in problems, with a Clopper-Pearson
    interval on the effective sample size (Korn & Graubard, 1998), vectorised over the last axis.

    ``successes[..., i]`` and ``sizes[..., i]`` are problem i's count of traces with the property
    and of traces (successes may be fractional, e.g. a per-problem pass@k with size 1); a size of
    0 marks a problem that is absent. Traces of one problem are correlated, so the effective
    sample size is ``n / design effect``, with the ratio estimator's between-problem variance:

    - it is clipped to [number of problems, number of traces]: never more information than
      independent traces, never less than one problem's worth per problem (where the rate is
      observed as exactly 0 or 1 there is no variance to estimate and the floor is used, so
      0 of n gives at least the Clopper-Pearson upper bound of 0 of the number of problems);
    - it is scaled by ``(t_{n-1} / t_{problems-1})^2`` (the degrees-of-freedom correction of the
      variance estimate from few problems; 1 when every problem has one trace).

    Chosen over the percentile bootstrap, which collapses to a point at 0 and 1 and
    under-covers on few problems; tests/test_stats.py simulates its coverage (>= 0.95 in every
    cell of 1-4 traces per problem, 12-60 traces, rates 0.02-0.95, intra-problem correlation
    0 and 0.5). Returns ``(estimate, low, high)``; NaN where no problem is present.
    """
    y = np.asarray(successes, dtype=float)
    m = np.asarray(sizes, dtype=float)
    present = m > 0
    problems = present.sum(axis=-1)
    n = m.sum(axis=-1)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = y.sum(axis=-1) / n
        residual = np.where(present, y - rate[..., None] * m, 0.0)
        variance = problems / np.maximum(problems - 1, 1) * (residual ** 2).sum(axis=-1) / n ** 2
        effective = rate * (1.0 - rate) / variance
        effective = np.where((variance > 0) & np.isfinite(effective), effective, problems)
        effective = np.clip(effective, problems, n)
        effective = effective * (stats.t.ppf(1 - alpha / 2, np.maximum(n - 1, 1))
                                 / stats.t.ppf(1 - alpha / 2, np.maximum(problems - 1, 1))) ** 2
        k = rate * effective
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, np.maximum(k, 1e-300), effective - k + 1), 0.0)
        high = np.where(k < effective, stats.beta.ppf(1 - alpha / 2, k + 1, np.maximum(effective - k, 1e-300)), 1.0)
    empty = problems == 0
    return (np.where(empty, np.nan, rate), np.where(empty, np.nan, low), np.where(empty, np.nan, high))


def cluster_rate(successes, sizes=None, level: float = 0.95) -> tuple[float, float, float]:
    """``cluster_clopper_pearson`` of one table: ``(estimate, low, high)`` as floats;
    ``sizes=None`` means one unit per problem (a mean of per-problem values in [0, 1])."""
    y = np.asarray(successes, dtype=float)
    m = np.ones_like(y) if sizes is None else np.asarray(sizes, dtype=float)
    if y.shape != m.shape:
        raise ValueError("successes and sizes need one value per problem")
    estimate, low, high = cluster_clopper_pearson(y, m, level)
    return float(estimate), float(low), float(high)


def fisher_greater(k1, n1, k0, n0) -> np.ndarray:
    """One-sided exact (Fisher) p-value that k1 of n1 is a higher rate than k0 of n0,
    vectorised: the hypergeometric tail P(X >= k1) with the margins fixed. Conservative at
    small counts, valid at any (Fisher's test needs no large-sample approximation)."""
    k1, n1, k0, n0 = (np.asarray(x, dtype=np.int64) for x in (k1, n1, k0, n0))
    return stats.hypergeom.sf(k1 - 1, n1 + n0, k1 + k0, n1)


def holm(pvalues, axis: int = -1) -> np.ndarray:
    """Holm step-down adjusted p-values along ``axis`` (one family per slice), vectorised;
    NaN entries are not tests (a fraction a problem lacks) and stay NaN."""
    p = np.moveaxis(np.asarray(pvalues, dtype=float), axis, -1)
    order = np.argsort(p, axis=-1)  # NaN sorts last
    ranked = np.take_along_axis(p, order, axis=-1)
    m = np.isfinite(p).sum(axis=-1, keepdims=True)
    scaled = (m - np.arange(p.shape[-1])) * ranked
    adjusted = np.minimum(1.0, np.maximum.accumulate(np.where(np.isnan(scaled), -np.inf, scaled), axis=-1))
    adjusted = np.where(np.isnan(ranked), np.nan, adjusted)
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return np.moveaxis(out, -1, axis)


def mcnemar_from_counts(only_first, only_second) -> np.ndarray:
    """``mcnemar_exact`` from the discordant pair counts, vectorised over many tables (a
    two-sided binomial test of b against b + c at 1/2; no discordant pairs gives 1)."""
    b, c = np.asarray(only_first, dtype=np.int64), np.asarray(only_second, dtype=np.int64)
    return np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
