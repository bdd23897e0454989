"""Figures of potential curves (matplotlib/seaborn, written as PNG files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

CORRECT_COLORS = {True: "#1b7837", False: "#b2182b"}


def plain(text: str) -> str:
    """Text from the data (problem ids) drawn as is: an unescaped ``$`` would start
    matplotlib mathtext, and ``$\\frac$`` in an id would crash the figure."""
    return str(text).replace("$", r"\$")


def _save(fig: plt.Figure, path: Path, also: Sequence[str] = ()) -> Path:
    """Write ``fig`` as PNG at ``path`` (what the HTML report shows), and in each format of
    ``also`` (pdf, svg: ``report.figure_formats``) beside it."""
    from .tables import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    for fmt in sorted(set(also) - {"png"}):
        atomic_write(path.with_suffix(f".{fmt}"), lambda tmp: fig.savefig(tmp, format=fmt, bbox_inches="tight"))
    plt.close(fig)
    return path


def draw_curve(ax: plt.Axes, curve: pd.DataFrame, title: str | None = None) -> None:
    """One potential curve with its 95% CI band, against the fraction of the trace kept."""
    curve = curve.sort_values("cut_fraction")
    color = CORRECT_COLORS[bool(curve["trace_correct"].iloc[0])]
    ax.fill_between(curve["cut_fraction"], curve["ci_low"], curve["ci_high"], color=color, alpha=0.18, lw=0)
    ax.plot(curve["cut_fraction"], curve["potential"], marker="o", ms=3, color=color, lw=1.5)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(plain(title), fontsize=8)


def curve_figure(curve: pd.DataFrame, path: Path, title: str, also: Sequence[str] = ()) -> Path:
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(4.2, 2.4))
    draw_curve(ax, curve)
    ax.set_xlabel("fraction of the trace given")
    ax.set_ylabel("potential")
    ax.set_title(plain(title), fontsize=9)
    return _save(fig, path, also)


def curves_grid(potentials: pd.DataFrame, path: Path, max_curves: int, also: Sequence[str] = ()) -> Path:
    """Small multiples: one panel per trace (green: the trace itself is correct)."""
    sns.set_theme(style="whitegrid", context="paper")
    keys = list(potentials.groupby(["problem_id", "trace_id"]).groups)[:max_curves]
    cols = min(6, max(1, len(keys)))
    rows = max(1, math.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.8 * rows), sharex=True, sharey=True,
                             squeeze=False)
    grouped = potentials.groupby(["problem_id", "trace_id"])
    for ax, key in zip(axes.flat, keys):
        draw_curve(ax, grouped.get_group(key), f"{key[0]} #{key[1]}")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.supxlabel("fraction of the trace given")
    fig.supylabel("potential")
    fig.tight_layout()
    return _save(fig, path, also)


def mean_curve_figure(potentials: pd.DataFrame, path: Path, also: Sequence[str] = ()) -> Path:
    """Mean potential per cut, split by whether the trace itself is correct."""
    sns.set_theme(style="whitegrid", context="paper")
    data = potentials.assign(
        trace=potentials["trace_correct"].map({True: "correct trace", False: "incorrect trace"}),
        position=potentials["cut_fraction"].round(2),
    )
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    sns.lineplot(data=data, x="position", y="potential", hue="trace", errorbar=("ci", 95), marker="o",
                 palette={"correct trace": CORRECT_COLORS[True], "incorrect trace": CORRECT_COLORS[False]},
                 ax=ax)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("fraction of the trace given")
    ax.set_ylabel("mean potential")
    return _save(fig, path, also)


CONDITION_COLORS = {"source": "#2166ac", "own": "#1b7837", "reasonless": "#b2182b", "shuffled": "#e08214",
                    "filler": "#762a83"}


def transfer_curves_figure(table: pd.DataFrame, path: Path) -> Path:
    """Target potential vs. fraction of the CoT given, per condition (mean, 95% bootstrap CI):
    on all problems, and on those the target could not solve alone."""
    sns.set_theme(style="whitegrid", context="paper")
    rows = table[(table["source_traces"] == "all") & (table["leak_filter"] == "all")]
    panels = [("mean_potential", "all problems"),
              ("mean_potential_unsolved", "problems unsolved alone"),
              ("no_answer_rate", "no-answer rate")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.0), sharex=True)
    for ax, (column, title) in zip(axes, panels):
        for condition, group in rows.groupby("condition"):
            group = group.sort_values("fraction")
            color = CONDITION_COLORS.get(condition)
            if f"{column}_ci_low" in group:
                ax.fill_between(group["fraction"], group[f"{column}_ci_low"], group[f"{column}_ci_high"],
                                color=color, alpha=0.15, lw=0)
            ax.plot(group["fraction"], group[column], marker="o", ms=3, color=color, label=condition)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("fraction of the CoT given")
    axes[0].set_ylabel("target's mean potential")
    axes[-1].set_ylabel("share of samples")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def transfer_unlocked_figure(cumulative: pd.DataFrame, path: Path) -> Path:
    """Share of the problems unsolved alone that are unlocked by f (f* <= f), per condition,
    with 95% exact intervals over problems: on all prefixes and on non-leaking ones."""
    sns.set_theme(style="whitegrid", context="paper")
    panels = [("all", "all prefixes"), ("no_leak", "prefixes not stating the answer")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.0), sharex=True, sharey=True)
    for ax, (leak_filter, title) in zip(axes, panels):
        for condition, group in cumulative[cumulative["leak_filter"] == leak_filter].groupby("condition"):
            group = group.sort_values("fraction")
            color = CONDITION_COLORS.get(condition)
            ax.fill_between(group["fraction"], group["ci_low"], group["ci_high"], color=color, alpha=0.15, lw=0,
                            step="post")
            ax.step(group["fraction"], group["share"], where="post", marker="o", ms=3, color=color, label=condition)
        n = int(cumulative["n_unsolved"].max()) if len(cumulative) else 0
        ax.set_title(f"{title} (n unsolved = {n})", fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("fraction of the CoT given")
    axes[0].set_ylabel("share unlocked by f")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def unlock_heatmap(potentials: pd.DataFrame, unsolved: pd.Series, path: Path) -> Path:
    """Problems x fractions: the target's potential given the source's CoT (f = 0: the
    floor batch); problems the target could not solve alone are marked with *."""
    sns.set_theme(style="white", context="paper")
    floor = potentials[potentials["condition"] == "floor"].assign(fraction=0.0)
    source = potentials[potentials["condition"] == "source"]
    grid = (pd.concat([floor, source]).groupby(["problem_id", "fraction"])["potential"].mean()
            .unstack("fraction").sort_index())
    labels = [plain(f"{pid} *" if unsolved.get(pid, False) else pid) for pid in grid.index]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * grid.shape[1], 0.8 + 0.28 * grid.shape[0]))
    sns.heatmap(grid, vmin=0, vmax=1, cmap="viridis", annot=grid.shape[0] <= 40, fmt=".2f",
                cbar_kws={"label": "potential"}, ax=ax, yticklabels=labels)
    ax.set_xlabel("fraction of the source CoT given")
    ax.set_ylabel("problem (* unsolved alone)")
    return _save(fig, path)
