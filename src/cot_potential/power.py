"""How well the event detector finds planted truth: precision, recall, false positives, power.

A detected event *matches* a planted one of the same curve when their cut intervals share at
least one step (``detected.start < planted.end`` and ``planted.start < detected.end``).
Planted lucky guesses are also spikes (the jump at the answer), so detected spikes are
scored against planted spikes and guesses together; detected drops against planted drops
(the simulator's ``tangent``); lucky
guesses by curve.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .dynamics import CURVE, DynamicsSettings, detect_events
from .simulate import grid_cuts_needed, simulate_curves

log = logging.getLogger(__name__)

POWER_COLUMNS = ("kind", "n_samples", "size", "n_curves", "recall", "recall_ci_low", "recall_ci_high",
                 "fpr", "n_null_curves", "correction", "alpha", "n_grid_cuts")


def _overlaps(detected: pd.DataFrame, planted: pd.DataFrame) -> pd.DataFrame:
    pairs = detected.merge(planted, on=CURVE, suffixes=("_d", "_p"))
    hit = (pairs["cut_start"] < pairs["end"]) & (pairs["start"] < pairs["cut_end"])
    return pairs[hit]


def _match(detected: pd.DataFrame, planted: pd.DataFrame) -> dict[str, float]:
    detected = detected.reset_index(drop=True).assign(_d=lambda d: np.arange(len(d)))
    planted = planted.reset_index(drop=True).assign(_p=lambda d: np.arange(len(d)))
    pairs = _overlaps(detected, planted)
    tp_detected = pairs["_d"].nunique()
    tp_planted = pairs["_p"].nunique()
    return {
        "n_detected": len(detected), "n_planted": len(planted),
        "precision": tp_detected / len(detected) if len(detected) else np.nan,
        "recall": tp_planted / len(planted) if len(planted) else np.nan,
    }


def score(events: pd.DataFrame, traces: pd.DataFrame, planted: pd.DataFrame,
          potentials: pd.DataFrame) -> dict[str, Any]:
    """Precision and recall per event kind, recovery accuracy, and the false-positive rate
    per curve on curves with nothing planted (any event, or any significant drop: the descriptive
    monotone call is no test and is checked against its own null, ``monotone.py``)."""
    out: dict[str, Any] = {}
    spikes = _match(events[events["kind"] == "spike"], planted[planted["kind"] == "spike"])
    tangents_d = events[events["kind"] == "drop"]  # detected drops vs. the planted ones
    tangents_p = planted[planted["kind"] == "tangent"]
    tangents = _match(tangents_d, tangents_p)
    pairs = _overlaps(tangents_d, tangents_p)
    tangents["recovered_accuracy"] = (
        float((pairs["recovered_d"].astype(bool) == pairs["recovered_p"].astype(bool)).mean()) if len(pairs) else np.nan)
    guessed = set(map(tuple, events.loc[events["kind"] == "lucky_guess", CURVE].itertuples(index=False)))
    truth = set(map(tuple, planted.loc[planted["kind"] == "guess", CURVE].itertuples(index=False)))
    out["spike"], out["tangent"] = spikes, tangents
    out["guess"] = {
        "n_detected": len(guessed), "n_planted": len(truth),
        "precision": len(guessed & truth) / len(guessed) if guessed else np.nan,
        "recall": len(guessed & truth) / len(truth) if truth else np.nan,
    }
    kinds = potentials.groupby(CURVE)["kind"].first()
    null = kinds[kinds == "none"].index
    flagged = set(map(tuple, events[CURVE].itertuples(index=False)))
    flagged |= set(map(tuple, traces.loc[~traces["no_significant_drop"].astype(bool), CURVE].itertuples(index=False)))
    n_false = sum(1 for key in null if tuple(key) in flagged)
    out["null"] = {"n_curves": len(null), "fpr": n_false / len(null) if len(null) else np.nan}
    return out


def power_table(fractions: Sequence[float], settings: DynamicsSettings, *, sizes: Sequence[float],
                ns: Sequence[int], n_curves: int, seed: int) -> pd.DataFrame:
    """Recall of planted spikes and tangents per (N, effect size), and the per-curve
    false-positive rate on flat curves at each N, on the given cut grid and thresholds."""
    from .stats import cluster_rate

    rows = []
    grid = sorted(set(fractions))
    for n in ns:
        null_pot, null_planted = simulate_curves(n_curves, grid, n_samples=n, seed=seed + n, kinds=["none"])
        ev, tr = detect_events(null_pot, settings)
        fpr = score(ev, tr, null_planted, null_pot)["null"]["fpr"]
        for kind in ("spike", "tangent"):
            if len(grid) < grid_cuts_needed(kind, recover_prob=0.0):
                log.warning("a grid of %d cuts is too short to plant a %s: no power rows for it", len(grid), kind)
                continue
            for size in sizes:
                pot, planted = simulate_curves(n_curves, grid, n_samples=n, seed=seed + n + int(1000 * size),
                                               kinds=[kind], size=float(size), recover_prob=0.0)
                ev, _ = detect_events(pot, settings)
                found = _overlaps(ev[ev["kind"] == kind], planted[planted["kind"] == kind])
                keys = set(map(tuple, found[CURVE].itertuples(index=False)))
                hit = np.array([tuple(k) in keys for k in planted[CURVE].itertuples(index=False)], dtype=float)
                recall, lo, hi = cluster_rate(hit)  # curves are independent: Clopper-Pearson
                rows.append({"kind": kind, "n_samples": n, "size": float(size), "n_curves": len(planted),
                             "recall": recall, "recall_ci_low": lo, "recall_ci_high": hi, "fpr": fpr,
                             "n_null_curves": n_curves, "correction": settings.correction,
                             "alpha": settings.alpha, "n_grid_cuts": len(grid)})
    return pd.DataFrame(rows, columns=list(POWER_COLUMNS))


def power_job(out: str, *, fractions: Sequence[float], settings: dict[str, Any], sizes: Sequence[float],
              ns: Sequence[int], n_curves: int, seed: int, config: dict[str, Any]) -> None:
    """Rule power_curve: ``results/tables/power.csv`` for the run's grid and thresholds."""
    from .provenance import provenance
    from .tables import write_table

    dyn = DynamicsSettings.from_config(settings)
    table = power_table(fractions, dyn, sizes=sizes, ns=ns, n_curves=n_curves, seed=seed)
    write_table(table, out, provenance(config, dynamics=dyn.__dict__, sizes=list(sizes), ns=list(ns),
                                       n_curves=n_curves, seed=seed))
