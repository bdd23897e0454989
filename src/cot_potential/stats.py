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
