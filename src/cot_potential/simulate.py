"""Planted truth: synthetic potential curves with known events and Bernoulli rollouts.

An event detector can only be judged against a truth it cannot see. This draws curves whose
*true* potential is known at every cut, plants spikes, tangents (recovered or not) and lucky
guesses in them, and draws the counts of N rollouts per cut from the true potential, so the
detector (``dynamics.detect_events``) runs unchanged on a table shaped like the pipeline's
potentials table and its findings can be scored against the planted events.

Curve kinds (one planted event per curve at most):

- ``none``: flat at a base level, or rising gently by ``drift`` over the trace; incorrect
  trace, no answer cut. Every null hypothesis of the detector holds on a flat curve.
- ``spike``: a rise of ``size`` over ``width`` cut steps; a correct trace whose answer is
  stated near the end with high potential (an answer cut, but *not* a lucky guess).
- ``tangent``: a drop of ``size`` over ``width`` steps; with probability ``recover_prob`` the
  curve returns to its level ``recover_after`` steps later (a correct trace), else it stays
  low (an incorrect trace).
- ``guess``: low potential (``guess_level``) up to an answer cut placed just before the answer
  is stated, then high: a lucky guess, which is also a spike on the cut grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .stats import clopper_pearson

KINDS = ("none", "spike", "tangent", "guess")
EVENT_KINDS = ("spike", "tangent", "guess")


@dataclass(frozen=True)
class PlantedEvent:
    """One planted event: the true potential changes between cut ``start`` and cut ``end``."""

    problem_id: str
    trace_id: int
    kind: str  # spike | tangent | guess
    start: int  # cut_index before the change
    end: int  # cut_index after the change
    size: float  # |change| of the true potential
    recovered: bool | None = None  # tangents: does the curve come back to its level

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"planted event kind must be one of {EVENT_KINDS}, got {self.kind!r}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"planted event needs 0 <= start < end, got {self.start}, {self.end}")


def draw_counts(true_potential, n_samples, rng: np.random.Generator) -> np.ndarray:
    """Correct rollouts out of ``n_samples`` per cut: the sum of independent Bernoulli draws
    with success probability ``true_potential`` (drawn as its exact binomial distribution)."""
    p = np.asarray(true_potential, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("true potentials must lie in [0, 1]")
    n = np.broadcast_to(np.asarray(n_samples, dtype=np.int64), p.shape)
    return rng.binomial(n, p)


@dataclass(frozen=True)
class _Cut:
    fraction: float
    truth: float
    grid: bool
    answer_offset: int = -1


def _levels(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high)) if high > low else float(low)


def _ramp(values: list[float], start: int, width: int, before: float, after: float) -> None:
    """Set ``values`` to ``before`` up to ``start``, ``after`` from ``start + width`` on, linear between."""
    for i in range(len(values)):
        if i <= start:
            values[i] = before
        elif i >= start + width:
            values[i] = after
        else:
            values[i] = before + (after - before) * (i - start) / width


def _curve(kind: str, grid: Sequence[float], rng: np.random.Generator, *, size: float, width: int,
           base: tuple[float, float], drift: float, recover_prob: float, recover_after: int,
           guess_level: float) -> tuple[list[_Cut], bool, list[tuple[str, int, int, bool | None]]]:
    """The cuts of one curve, whether its trace is correct, and its planted events as
    ``(kind, start, end, recovered)`` in *grid* positions (the answer cut is resolved later)."""
    g = len(grid)
    truth = [0.0] * g
    events: list[tuple[str, int, int, bool | None]] = []
    answer_between: int | None = None  # place an answer cut between grid i and i + 1
    correct = False
    if kind == "none":
        level = _levels(rng, base[0], max(base[0], base[1] - drift))
        truth = [min(1.0, level + drift * f) for f in grid]
    elif kind == "spike":
        a = int(rng.integers(1, g - width - 1))
        before = _levels(rng, min(base[0], 1.0 - size), min(base[1], 1.0 - size))
        _ramp(truth, a, width, before, before + size)
        events.append(("spike", a, a + width, None))
        correct, answer_between = True, g - 2
    elif kind == "tangent":
        recovered = bool(rng.random() < recover_prob)
        room = width + recover_after + width if recovered else width
        a = int(rng.integers(1, g - room))
        before = _levels(rng, max(base[0], size), max(base[1], size))
        _ramp(truth, a, width, before, before - size)
        if recovered:
            back = a + width + recover_after
            for i in range(back, g):
                truth[i] = min(before, truth[i] + size * min(1.0, (i - back) / width))
            correct, answer_between = True, g - 2
        events.append(("tangent", a, a + width, recovered))
    elif kind == "guess":
        a = int(rng.integers(1, g - 1))
        high = _levels(rng, 0.9, 1.0)
        _ramp(truth, a, 1, guess_level, high)
        events.append(("spike", a, a + 1, None))
        events.append(("guess", a, a + 1, None))
        correct, answer_between = True, a
    else:
        raise ValueError(f"curve kind must be one of {KINDS}, got {kind!r}")
    cuts = [_Cut(f, t, True) for f, t in zip(grid, truth)]
    if answer_between is not None:
        i = answer_between
        cuts.append(_Cut((grid[i] + grid[i + 1]) / 2, truth[i], False, 0))
    return sorted(cuts, key=lambda c: c.fraction), correct, events


def grid_cuts_needed(kind: str, *, width: int = 1, recover_prob: float = 0.5, recover_after: int = 2) -> int:
    """The fewest grid cuts on which a curve of ``kind`` can be planted (see ``simulate_curves``)."""
    room = {"none": 1, "spike": width + 3, "guess": 3,
            "tangent": 2 * width + recover_after + 2 if recover_prob > 0 else width + 2}
    return room[kind]


def simulate_curves(
    n_curves: int,
    fractions: Sequence[float],
    *,
    n_samples: int,
    seed: int,
    kinds: Sequence[str] = KINDS,
    weights: Sequence[float] | None = None,
    size: float | tuple[float, float] = (0.4, 0.6),
    width: int = 1,
    base: tuple[float, float] = (0.1, 0.9),
    drift: float = 0.0,
    recover_prob: float = 0.5,
    recover_after: int = 2,
    guess_level: float = 0.05,
    traces_per_problem: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw ``n_curves`` curves on the cut grid ``fractions`` with N = ``n_samples`` rollouts per cut.

    Returns ``(potentials, events)``: ``potentials`` has the potentials table's columns that
    the event detector reads (``problem_id, trace_id, cut_index, cut_fraction, n_samples,
    n_correct, potential, ci_low, ci_high``, ``trace_correct``, ``grid_cut``, ``answer_cut``,
    ``answer_offset``, ``char_offset``) plus ``true_potential`` and the curve's planted
    ``kind``; ``events`` lists the planted events (the fields of ``PlantedEvent``, cut indices
    into the same curve). ``size`` is one effect size or a range to draw from; a curve kind is
    drawn per curve from ``kinds`` (with ``weights``).
    """
    grid = sorted(set(float(f) for f in fractions))
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown curve kinds {sorted(unknown)}; known: {KINDS}")
    needed = max(grid_cuts_needed(k, width=width, recover_prob=recover_prob, recover_after=recover_after)
                 for k in kinds)
    if len(grid) < needed:
        raise ValueError(f"need at least {needed} grid fractions for {sorted(set(kinds))} with width {width}, "
                         f"got {len(grid)}")
    lo, hi = (size, size) if np.isscalar(size) else size
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"effect size must lie in (0, 1], got {size}")
    rng = np.random.default_rng(seed)
    probs = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    rows, planted = [], []
    for c in range(n_curves):
        problem_id, trace_id = f"sim-{c // traces_per_problem:05d}", c % traces_per_problem
        kind = str(rng.choice(list(kinds), p=probs))
        cuts, correct, events = _curve(kind, grid, rng, size=_levels(rng, lo, hi), width=width, base=base,
                                       drift=drift, recover_prob=recover_prob, recover_after=recover_after,
                                       guess_level=guess_level)
        grid_index = [i for i, cut in enumerate(cuts) if cut.grid]
        answer_index = next((i for i, cut in enumerate(cuts) if not cut.grid), None)
        for ev_kind, a, b, recovered in events:
            start, end = grid_index[a], grid_index[b]
            if ev_kind == "guess":
                start, end = answer_index, answer_index + 1
            planted.append(PlantedEvent(problem_id, trace_id, ev_kind, start, end,
                                        round(abs(cuts[end].truth - cuts[start].truth), 6), recovered))
        for i, cut in enumerate(cuts):
            rows.append({
                "problem_id": problem_id, "trace_id": trace_id, "cut_index": i,
                "cut_fraction": cut.fraction, "nominal_fraction": cut.fraction if cut.grid else np.nan,
                "cut_token": int(round(1000 * cut.fraction)), "char_offset": int(round(4000 * cut.fraction)),
                "grid_cut": cut.grid, "answer_cut": cut.answer_offset >= 0, "answer_offset": cut.answer_offset,
                "true_potential": cut.truth, "trace_correct": correct, "kind": kind,
            })
    potentials = pd.DataFrame(rows)
    potentials["n_samples"] = np.int64(n_samples)
    potentials["n_correct"] = draw_counts(potentials["true_potential"], n_samples, rng).astype("int64")
    potentials["potential"] = potentials["n_correct"] / potentials["n_samples"]
    potentials["ci_low"], potentials["ci_high"] = clopper_pearson(potentials["n_correct"], potentials["n_samples"])
    columns = [f.name for f in PlantedEvent.__dataclass_fields__.values()]
    events_df = pd.DataFrame([asdict(e) for e in planted], columns=columns)
    return potentials, events_df
