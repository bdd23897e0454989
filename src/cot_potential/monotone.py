"""Monotone curves, descriptively, and how much of "non-monotone" sampling noise alone makes.

The paper calls a trace monotone when its potential does not go down, and publishes no
tolerance. Here a curve is monotone at tolerance ``t`` when its estimated potential never
falls more than ``t`` below its running maximum over the grid cuts (answer cuts excluded):
its *shortfall* ``max_j (max_{i<=j} pot_i - pot_j)`` is at most ``t``. A slow slide
accumulates shortfall, so it does not pass the way a sequence of small steps would.

Estimated potentials are noisy, so even a truly monotone curve falls below its running
maximum. The *null* of a run measures by how much: each observed curve's weighted isotonic
(non-decreasing) fit is taken as its truth, binomial counts are drawn at the curve's own N
per cut, and the share of curves called non-monotone is recorded per replicate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import isotonic_regression


def shortfall(potentials: np.ndarray) -> np.ndarray:
    """The largest fall below the running maximum along the last axis (0 for a
    non-decreasing curve); NaN-padded ends are ignored."""
    pot = np.asarray(potentials, dtype=float)
    filled = np.where(np.isnan(pot), -np.inf, pot)
    running = np.maximum.accumulate(filled, axis=-1)
    falls = np.where(np.isnan(pot), 0.0, running - filled)
    return falls.max(axis=-1) if pot.shape[-1] else np.zeros(pot.shape[:-1])


def isotonic_fit(values: Sequence[float], weights: Sequence[float]) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool-adjacent-violators, scipy's)."""
    y = np.asarray(values, dtype=float)
    if not len(y):
        return y
    w = np.clip(np.asarray(weights, dtype=float), 1e-12, None)  # scipy needs positive weights
    return isotonic_regression(y, weights=w, increasing=True).x


def padded_curves(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``(n_correct, n_samples)`` per curve as two (curves, max cuts) arrays, short curves
    padded with ``n_samples = 0`` (NaN potential)."""
    width = max((len(k) for k, _ in curves), default=0)
    correct = np.zeros((len(curves), width))
    samples = np.zeros((len(curves), width))
    for i, (k, n) in enumerate(curves):
        correct[i, : len(k)], samples[i, : len(n)] = k, n
    return correct, samples


def null_shortfalls(curves: Sequence[tuple[np.ndarray, np.ndarray]], *, replicates: int,
                    seed: int) -> np.ndarray:
    """Shortfalls of ``replicates`` redraws of every curve from its isotonic fit: an array
    (replicates, curves). ``curves`` are ``(n_correct, n_samples)`` over the grid cuts."""
    correct, samples = padded_curves(curves)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(samples > 0, correct / samples, np.nan)
    truth = np.zeros_like(observed)
    for i, (k, n) in enumerate(curves):
        if len(k):
            truth[i, : len(k)] = isotonic_fit(observed[i, : len(k)], n)
    rng = np.random.default_rng(seed)
    out = np.empty((replicates, len(curves)))
    block = max(1, 2_000_000 // max(1, samples.size))  # bounds memory at paper scale
    for start in range(0, replicates, block):
        size = min(block, replicates - start)
        counts = rng.binomial(samples.astype(np.int64), np.clip(truth, 0.0, 1.0), size=(size, *samples.shape))
        with np.errstate(invalid="ignore", divide="ignore"):
            redrawn = np.where(samples > 0, counts / samples, np.nan)
        out[start:start + size] = shortfall(redrawn)
    return out


def null_share(null: np.ndarray, tolerance: float, chosen: np.ndarray | None = None,
               level: float = 0.95) -> tuple[float, float, float]:
    """Share of the ``chosen`` curves called non-monotone at ``tolerance`` under the null: its
    mean over replicates and the central ``level`` range of the replicates (what the observed
    share of non-monotone curves would be if every curve were truly monotone)."""
    picked = null if chosen is None else null[:, np.asarray(chosen, dtype=bool)]
    if picked.shape[1] == 0:
        return float("nan"), float("nan"), float("nan")
    shares = (picked > tolerance + 1e-12).mean(axis=1)
    low, high = np.quantile(shares, [(1 - level) / 2, (1 + level) / 2])
    return float(shares.mean()), float(low), float(high)


def tolerance_suffix(tolerance: float) -> str:
    """Column suffix of a tolerance: 0.05 -> ``tol05``, 0.2 -> ``tol20``."""
    return f"tol{round(100 * tolerance):02d}"


def grid_counts(potentials, keys) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(n_correct, n_samples)`` over the grid cuts (in cut order) of each curve in ``keys``
    (``(problem_id, trace_id)`` pairs) from a potentials table; answer cuts are left out."""
    rows = potentials[potentials["grid_cut"].astype(bool)] if "grid_cut" in potentials else potentials
    rows = rows.sort_values(["problem_id", "trace_id", "cut_index"])
    correct, samples = rows["n_correct"].to_numpy(float), rows["n_samples"].to_numpy(float)
    at = rows.groupby(["problem_id", "trace_id"]).indices
    empty = np.array([], dtype=int)
    return [(correct[at.get((p, t), empty)], samples[at.get((p, t), empty)]) for p, t in keys]
