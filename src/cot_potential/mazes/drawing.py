"""Figures of the maze experiment: a maze with a model's search and plan, learning curves,
and mean potential curves of the maze models (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..figures import _save  # noqa: E402
from .validate import Grid, Output  # noqa: E402

DATA_COLORS = {"solution": "#7f7f7f", "correct": "#1b7837", "swapped": "#762a83"}


def draw_maze(grid: Grid, output: Output, path: Path, title: str) -> Path:
    """Walls (black), cells the trace closed (blue) or only created (pale blue), the plan
    (orange line), start (green circle) and goal (red star). Cells off the grid are skipped."""
    fig, ax = plt.subplots(figsize=(2.6, 2.6))
    ax.set_xlim(-0.5, grid.width - 0.5)
    ax.set_ylim(grid.height - 0.5, -0.5)  # y = 0 is the top row, as in the token format
    ax.set_aspect("equal")
    ax.set_xticks(range(grid.width))
    ax.set_yticks(range(grid.height))
    ax.tick_params(labelsize=5, length=0)
    on_grid = [e for e in output.events or () if 0 <= e.cell[0] < grid.width and 0 <= e.cell[1] < grid.height]
    closed = {e.cell for e in on_grid if e.kind == "close"}
    created = {e.cell for e in on_grid if e.kind == "create"} - closed
    for cells, color in ((created, "#c6dbef"), (closed, "#6baed6"), (grid.walls, "#222222")):
        for x, y in cells:
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, color=color, lw=0))
    if output.plan:
        ax.plot([c[0] for c in output.plan], [c[1] for c in output.plan], color="#e6550d", lw=2, marker="o", ms=2.5)
    ax.plot(*grid.start, marker="o", color="#1b7837", ms=8, mec="white")
    ax.plot(*grid.goal, marker="*", color="#b2182b", ms=11, mec="white")
    ax.set_title(title, fontsize=7)
    return _save(fig, path)


def _lines_figure(lines: dict[str, tuple[Any, Any]], data: dict[str, str], xlabel: str, ylabel: str,
                  path: Path) -> Path:
    """One line per run (``label -> (x, y)``), coloured by its training data, y in [0, 1]."""
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    for label, (x, y) in lines.items():
        ax.plot(x, y, marker="o", ms=3, label=f"{label} ({data[label]})", color=DATA_COLORS.get(data[label]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def training_figure(curves: dict[str, pd.DataFrame], data: dict[str, str], path: Path) -> Path:
    """Plan accuracy on held-out mazes (greedy) against training steps, one line per run."""
    lines = {run: (c["step"], c["plan_accuracy"]) for run, c in curves.items() if "plan_accuracy" in c}
    return _lines_figure(lines, data, "training step", "plan accuracy (held out)", path)


def potential_figure(means: dict[str, pd.DataFrame], data: dict[str, str], path: Path) -> Path:
    """Mean potential against the fraction of the trace given, one line per maze model."""
    lines = {label: (c["fraction"], c["potential"]) for label, c in means.items()}
    return _lines_figure(lines, data, "fraction of the trace given", "mean potential", path)
