"""Sequential estimation of a potential: sample in rounds, stop once it is pinned down.

Stopping when a *fixed-n* interval gets narrow enough is wrong twice: the interval no longer
covers (it was looked at many times), and the estimate ``k/n`` is biased toward 0 and 1
(a run that drifted toward an end narrows its interval and stops early), which inflates
spikes and lucky guesses. Here:

- the interval is a **confidence sequence** (the beta-binomial mixture martingale of Robbins,
  with a Jeffreys Beta(1/2, 1/2) mixing prior): by Ville's inequality it covers the true
  potential at *every* n simultaneously with probability >= level, so it stays valid at any
  data-dependent stopping time;
- the rule stops a prefix at the first look ``n`` (every ``batch`` samples) with
  ``n >= min_n`` and a confidence-sequence half-width <= ``half_width``, or at ``max_n``;
- the estimate is the Rao-Blackwell (UMVUE) estimator of that rule: ``E[X_1 | stopping point]``,
  computed exactly by counting sample paths. It is **unbiased at every p** under the rule.

The same path counts give the exact distribution of the stopping point at any p, so bias
and coverage are checked exactly (``exact_operating_characteristics``), not by simulation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln
from scipy.stats import binom, hypergeom

PRIOR = (0.5, 0.5)


def _log_lik(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(k > 0, k * np.log(np.clip(p, 1e-300, 1.0)), 0.0)
        b = np.where(n - k > 0, (n - k) * np.log1p(-np.clip(p, 0.0, 1 - 1e-16)), 0.0)
    return a + b


def confidence_sequence(k, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The anytime-valid interval after ``k`` successes in ``n`` draws (vectorised).

    ``{p : mixture likelihood ratio < 1/alpha}``; the log-likelihood is concave in p, so the set
    is an interval around ``k/n``, found by bisection on both sides. ``n = 0`` gives [0, 1].
    """
    k = np.atleast_1d(np.asarray(k, dtype=float))
    n = np.atleast_1d(np.asarray(n, dtype=float))
    k, n = np.broadcast_arrays(k, n)
    alpha = 1.0 - level
    a, b = PRIOR
    # inside  <=>  k log p + (n-k) log(1-p) > log B(a+k, b+n-k) - log B(a, b) - log(1/alpha)
    target = betaln(a + k, b + n - k) - betaln(a, b) - np.log(1.0 / alpha)
    phat = np.where(n > 0, k / np.maximum(n, 1), 0.5)
    lo_out, lo_in = np.zeros_like(phat), phat.copy()
    hi_in, hi_out = phat.copy(), np.ones_like(phat)
    for _ in range(60):
        mid = (lo_out + lo_in) / 2
        inside = _log_lik(k, n, mid) > target
        lo_in, lo_out = np.where(inside, mid, lo_in), np.where(inside, lo_out, mid)
        mid = (hi_in + hi_out) / 2
        inside = _log_lik(k, n, mid) > target
        hi_in, hi_out = np.where(inside, mid, hi_in), np.where(inside, hi_out, mid)
    low = np.where(_log_lik(k, n, np.zeros_like(phat)) > target, 0.0, lo_in)
    high = np.where(_log_lik(k, n, np.ones_like(phat)) > target, 1.0, hi_in)
    empty = n <= 0
    return np.where(empty, 0.0, low), np.where(empty, 1.0, high)


@dataclass(frozen=True)
class StoppingRule:
    """Sample ``batch`` at a time; stop at the first look with ``n >= min_n`` and a
    confidence-sequence half-width <= ``half_width``, or at ``max_n``."""

    batch: int = 16
    min_n: int = 16
    max_n: int = 128
    half_width: float = 0.1
    level: float = 0.95

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= self.max_n:
            raise ValueError(f"need 1 <= batch <= max_n, got batch={self.batch}, max_n={self.max_n}")
        if not 1 <= self.min_n <= self.max_n:
            raise ValueError(f"need 1 <= min_n <= max_n, got min_n={self.min_n}, max_n={self.max_n}")
        if not 0 < self.half_width < 0.5 or not 0 < self.level < 1:
            raise ValueError("need 0 < half_width < 0.5 and 0 < level < 1")

    def looks(self) -> list[int]:
        """The sample counts at which the rule looks: batch, 2 batch, ..., max_n."""
        return list(self._looks())

    @functools.cache  # noqa: B019 - frozen dataclass: computed once per rule
    def _looks(self) -> tuple[int, ...]:
        return tuple(sorted({min(r * self.batch, self.max_n) for r in range(1, -(-self.max_n // self.batch) + 1)}))

    @functools.cache  # noqa: B019
    def _look_positions(self) -> dict[int, int]:
        return {n: i for i, n in enumerate(self._looks())}

    def is_look(self, n: int) -> bool:
        return n in self._look_positions()

    def next_batch(self, n: int) -> int:
        return min(self.batch, self.max_n - n)

    def stops(self, k: int, n: int) -> bool:
        return bool(self._stop_table()[self._look_index(n)][k])

    def _look_index(self, n: int) -> int:
        if n not in self._look_positions():
            raise ValueError(f"{n} samples is not a look of {self} (looks: {self.looks()})")
        return self._look_positions()[n]

    @functools.cache  # noqa: B019 - frozen dataclass: one table per rule
    def _stop_table(self) -> list[np.ndarray]:
        table = []
        for n in self.looks():
            k = np.arange(n + 1)
            low, high = confidence_sequence(k, np.full_like(k, n), self.level)
            table.append((n >= self.max_n) | ((n >= self.min_n) & ((high - low) / 2 <= self.half_width)))
        return table

    @functools.cache  # noqa: B019
    def _path_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per look r and count k: the share of the C(n_r, k) sequences that reach (n_r, k)
        without stopping earlier (``f``), and the same restricted to sequences whose first
        draw is a success, as a share of C(n_r, k) (``g``). UMVUE = g / f."""
        looks, stop = self.looks(), self._stop_table()
        n0 = looks[0]
        f = [np.ones(n0 + 1)]
        g = [np.arange(n0 + 1) / n0]
        for r in range(1, len(looks)):
            prev, cur = looks[r - 1], looks[r]
            go_f = np.where(stop[r - 1], 0.0, f[-1])
            go_g = np.where(stop[r - 1], 0.0, g[-1])
            # C(prev, k) C(cur - prev, k' - k) / C(cur, k') is hypergeometric in k given k'.
            kk, kp = np.meshgrid(np.arange(prev + 1), np.arange(cur + 1), indexing="ij")
            weight = hypergeom.pmf(kk, cur, prev, kp)
            f.append(go_f @ weight)
            g.append(go_g @ weight)
        return f, g

    def estimate(self, k: int, n: int) -> float:
        """The unbiased (UMVUE) potential after stopping at ``k`` of ``n``.

        At a state the rule would not have stopped in (e.g. verdicts regraded differently),
        the conditional expectation given reaching it is still defined and is returned; an
        unreachable state falls back to ``k/n``.
        """
        r = self._look_index(n)
        f, g = self._path_weights()
        return float(g[r][k] / f[r][k]) if f[r][k] > 0 else k / n

    def exact_operating_characteristics(self, p: float) -> dict[str, float]:
        """Exact bias, mean absolute error, coverage and mean n of the rule at potential ``p``."""
        f, _ = self._path_weights()
        stop = self._stop_table()
        mean = mae = cover = mean_n = total = 0.0
        for r, n in enumerate(self.looks()):
            k = np.arange(n + 1)
            prob = f[r] * binom.pmf(k, n, p) * stop[r]
            if not prob.any():
                continue
            est = np.array([self.estimate(int(i), n) for i in k])
            low, high = confidence_sequence(k, np.full_like(k, n), self.level)
            mean += float(prob @ est)
            mae += float(prob @ np.abs(est - p))
            cover += float(prob @ ((low <= p) & (p <= high)))
            mean_n += float(prob.sum() * n)
            total += float(prob.sum())
        return {"bias": mean - p, "mae": mae, "coverage": cover, "mean_n": mean_n, "total": total}
