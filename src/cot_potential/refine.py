"""Adaptive cut refinement: where a trace's potential changes, cut it finer.

The fixed protocol cuts every trace at the same grid (every 5%) and spends N samples on
every cut, including long stretches where nothing happens. Here a trace starts from a coarse
grid; every interval between adjacent cuts whose potentials differ significantly is bisected
(at its middle token), and again, until the change is bracketed by cuts at most ``min_gap``
tokens apart (or the trace's cut budget is spent). The change then sits between two
*bracket* cuts.

Which intervals get bisected is decided on a separate, small **search** sample per cut. The
cuts a trace reports (the coarse grid and the brackets) are then estimated on **fresh**
samples, independent of the search: choosing intervals by their noisy differences selects
differences that are too large (the winner's curse), so estimates taken from the same samples
would inflate every spike the search found. Search cuts between brackets only localise the
change; they are not reported.

``TraceDesign`` is the decision logic for one trace, driven in rounds: ``needs()`` says what
to sample next, ``record()`` takes the outcomes (True = correct). The pipeline feeds it graded
rollouts (``adaptive.py``); ``bench/sampling`` feeds it draws from planted true curves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import hypergeom

from .sequential import StoppingRule

SEARCH, ESTIMATE = "search", "estimate"
COARSE, BRACKET = "coarse", "bracket"


@dataclass(frozen=True)
class RefineSettings:
    """How the search for changes works."""

    search_n: int = 32  # search samples per cut
    alpha: float = 0.05  # an interval is bisected if its two cuts differ at this level (Fisher exact)
    min_gap: int = 1  # tokens: intervals this short are not bisected
    max_cuts: int = 32  # cuts per trace, coarse ones included

    def __post_init__(self) -> None:
        if self.search_n < 1 or not 0 < self.alpha < 1 or self.min_gap < 1 or self.max_cuts < 2:
            raise ValueError(f"invalid refinement settings: {self}")


@dataclass(frozen=True)
class Need:
    """Sample ``count`` more outcomes of one cut in one phase, starting at sample ``start``."""

    token: int
    phase: str  # search | estimate
    start: int
    count: int


@dataclass
class CutState:
    token: int
    coarse: bool
    search: list[bool] = field(default_factory=list)
    estimate: list[bool] = field(default_factory=list)
    reported: bool = False
    stopped: bool = False

    @property
    def role(self) -> str:
        if self.coarse:
            return COARSE
        return BRACKET if self.reported else SEARCH


@functools.lru_cache(maxsize=1 << 16)
def fisher_p(ka: int, na: int, kb: int, nb: int) -> float:
    """Two-sided Fisher exact p-value of k_a/n_a vs k_b/n_b (as ``scipy.stats.fisher_exact``:
    the probability of tables at most as likely as the observed one, margins fixed)."""
    total, successes = na + nb, ka + kb
    support = np.arange(max(0, successes - nb), min(na, successes) + 1)
    pmf = hypergeom.pmf(support, total, na, successes)
    observed = hypergeom.pmf(ka, total, na, successes)
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-7)].sum()))


def significant(a: list[bool], b: list[bool], alpha: float) -> tuple[bool, float]:
    """Do two cuts' search outcomes differ (two-sided Fisher exact test)?"""
    ka, kb = sum(a), sum(b)
    if ka * len(b) == kb * len(a):
        return False, 1.0
    p = fisher_p(ka, len(a), kb, len(b))
    return p < alpha, p


class TraceDesign:
    """The adaptive design of one trace: which cuts, how many samples each, in rounds."""

    def __init__(self, coarse_tokens: list[int], rule: StoppingRule, refine: RefineSettings | None):
        if not coarse_tokens:
            raise ValueError("a trace needs at least one cut")
        self.rule, self.refine = rule, refine
        self.cuts: dict[int, CutState] = {}
        for t in sorted(set(int(t) for t in coarse_tokens)):
            self.cuts[t] = CutState(t, coarse=True, reported=True)
        self.searching = refine is not None and len(self.cuts) > 1

    # ------------------------------------------------------------------ driving

    def needs(self) -> list[Need]:
        """What to sample in the next round (empty when the design is complete)."""
        self._advance_search()
        out = []
        if self.searching:
            for cut in self.in_order():
                if len(cut.search) < self.refine.search_n:
                    out.append(Need(cut.token, SEARCH, len(cut.search), self.refine.search_n - len(cut.search)))
        for cut in self.in_order():
            if cut.reported and not cut.stopped:
                out.append(Need(cut.token, ESTIMATE, len(cut.estimate), self.rule.next_batch(len(cut.estimate))))
        return out

    def record(self, token: int, phase: str, outcomes: list[bool]) -> None:
        cut = self.cuts[token]
        if phase == SEARCH:
            cut.search.extend(bool(o) for o in outcomes)
        elif phase == ESTIMATE:
            cut.estimate.extend(bool(o) for o in outcomes)
            n = len(cut.estimate)
            if self.rule.is_look(n) and self.rule.stops(sum(cut.estimate), n):
                cut.stopped = True
        else:
            raise ValueError(f"unknown phase {phase!r}")

    @property
    def done(self) -> bool:
        return not self.searching and all(c.stopped for c in self.cuts.values() if c.reported)

    # ------------------------------------------------------------------ search

    def in_order(self) -> list[CutState]:
        """Every cut of the trace, by position."""
        return [self.cuts[t] for t in sorted(self.cuts)]

    def _intervals(self) -> list[tuple[CutState, CutState, float]]:
        """Adjacent cut pairs whose search samples differ significantly, with their p-values."""
        cuts = self.in_order()
        out = []
        for a, b in zip(cuts, cuts[1:]):
            hit, p = significant(a.search, b.search, self.refine.alpha)
            if hit:
                out.append((a, b, p))
        return out

    def _advance_search(self) -> None:
        """Once every cut has its search sample: bisect significant intervals, or finish."""
        if not self.searching or any(len(c.search) < self.refine.search_n for c in self.cuts.values()):
            return
        splittable = sorted((p, a.token, b.token) for a, b, p in self._intervals()
                            if b.token - a.token > self.refine.min_gap)
        room = self.refine.max_cuts - len(self.cuts)
        new = [(a + b) // 2 for _, a, b in splittable[:max(0, room)]]
        new = [t for t in new if t not in self.cuts]
        if new:
            for t in new:
                self.cuts[t] = CutState(t, coarse=False)
            return
        self.searching = False
        for a, b, _ in self._intervals():
            a.reported = b.reported = True

    # ------------------------------------------------------------------ results

    def reported(self) -> list[CutState]:
        return [c for c in self.in_order() if c.reported]

    def estimate(self, cut: CutState) -> float:
        """The unbiased potential of a reported cut (its fresh samples, the stopping rule)."""
        return self.rule.estimate(sum(cut.estimate), len(cut.estimate))

    def samples_used(self) -> int:
        return sum(len(c.search) + len(c.estimate) for c in self.cuts.values())
