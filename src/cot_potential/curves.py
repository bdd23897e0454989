"""Potential curves outside the workflow: draw one, export all as CSV and JSON.

    import pandas as pd
    import cot_potential
    pot = pd.read_parquet("results/potentials/<model>/<dataset>.parquet")
    ax = cot_potential.plot_curve(pot[pot["problem_id"] == pot["problem_id"].iloc[0]])

The exports hold one row per cut (CSV) and one object per trace (JSON: its cuts, potentials,
95% intervals and the trace text cut into the segments between cuts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

CURVE_COLUMNS = ("problem_id", "trace_id", "cut_index", "cut_fraction", "cut_token", "n_samples", "n_correct",
                 "potential", "ci_low", "ci_high")
TRACE_KEYS = ["problem_id", "trace_id"]


def plot_curve(df: pd.DataFrame, ax: Any = None) -> Any:
    """Draw the potential curve(s) of ``df`` (rows of a potentials table; one line per trace,
    green where the trace itself is correct) on ``ax`` (a new figure if None); returns the Axes."""
    from .figures import draw_curve, plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 2.4))
    curve = df if "trace_correct" in df else df.assign(trace_correct=True)
    for _, one in curve.groupby(TRACE_KEYS, sort=False):
        draw_curve(ax, one)
    ax.set_xlabel("fraction of the trace given")
    ax.set_ylabel("potential")
    return ax


def curve_table(potentials: pd.DataFrame) -> pd.DataFrame:
    """One row per cut: the columns a reader of a curve needs, in trace and cut order."""
    columns = [c for c in CURVE_COLUMNS if c in potentials] + [c for c in ("trace_correct",) if c in potentials]
    return potentials[columns].sort_values(TRACE_KEYS + ["cut_index"]).reset_index(drop=True)


def curve_objects(potentials: pd.DataFrame, traces: pd.DataFrame) -> list[dict[str, Any]]:
    """One object per trace: its cuts, potentials, intervals and text segments (the text before
    the first cut, then between cuts; ``segments[i]`` ends where cut ``i`` is made)."""
    from .report import segments

    texts = traces.set_index(TRACE_KEYS)["text"]
    objects = []
    for (problem_id, trace_id), curve in potentials.groupby(TRACE_KEYS, sort=True):
        curve = curve.sort_values("cut_index")
        pieces = segments(texts.loc[(problem_id, trace_id)], curve) if "char_offset" in curve else []
        objects.append({
            "problem_id": str(problem_id), "trace_id": int(trace_id),
            "trace_correct": bool(curve["trace_correct"].iloc[0]) if "trace_correct" in curve else None,
            "cuts": [float(x) for x in curve["cut_fraction"]],
            "cut_tokens": [int(x) for x in curve["cut_token"]],
            "potentials": [float(x) for x in curve["potential"]],
            "intervals": [[float(lo), float(hi)] for lo, hi in zip(curve["ci_low"], curve["ci_high"])],
            "n_samples": [int(x) for x in curve["n_samples"]],
            "segments": [p["text"] for p in pieces],
        })
    return objects


def export_curves(potentials: pd.DataFrame, traces: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Write ``curves.csv`` and ``curves.json`` into ``out_dir`` (atomically); returns their paths."""
    from .tables import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "curves.csv", "json": out / "curves.json"}
    atomic_write(paths["csv"], lambda tmp: curve_table(potentials).to_csv(tmp, index=False))
    text = json.dumps(curve_objects(potentials, traces), indent=1, ensure_ascii=False)
    atomic_write(paths["json"], lambda tmp: Path(tmp).write_text(text))
    return paths
