"""The trace-dynamics part of the report: figures (curves with events, distributions, power)
and the context of ``report/dynamics.html.j2``."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .figures import _save, draw_curve  # noqa: E402
from .tables import read_table  # noqa: E402
from .rates import LABELLED, RATES  # noqa: E402

EVENT_COLORS = {"spike": "#2166ac", "drop": "#e08214", "recovery": "#80cdc1", "lucky_guess": "#762a83"}
CURVE = ["problem_id", "trace_id"]
# The paper's numbers (Bachmann et al., 2026) for Qwen2.5-7B(-Instruct) on competition math
# (AIME 2024, AIME 2025, MATH-500: per model, as this project reads it), the protocol they were
# measured with (N = 128, cuts every 5%) and what each rate means there. The paper publishes no
# thresholds (alpha, delta, tolerance): ours are the config's, stated beside every comparison.
PAPER = {"model": "Qwen2.5-7B-Instruct", "model_names": ("qwen2.5-7b-instruct", "qwen2.5-7b"),
         "datasets": ("aime2024", "aime2025", "math500"),
         "dataset_names": {"aime2024": "aime2024", "aime24": "aime2024", "aime2025": "aime2025",
                           "aime25": "aime2025", "math500": "math500"},
         "n_samples": 128, "n_grid_cuts": 21, "cut_grid": "fraction:0-1/0.05 (21)",
         "rates": {"monotone_rate": 0.42, "insight_rate": 0.62, "tangent_rate": 0.095},
         "definitions": {"monotone_rate": "the curve does not go down (descriptive)",
                         "insight_rate": "a spike explained by the text just generated (labelled)",
                         "tangent_rate": "a sharp drop where the trace wanders off (labelled)"}}
# Where a rate's labels come from (the label-source column of its kind of event).
LABEL_SOURCE = {"insight_rate": "label_source", "tangent_rate": "drop_label_source"}


def draw_events(ax: plt.Axes, curve: pd.DataFrame, events: pd.DataFrame) -> None:
    """A curve with its events shaded between their cuts, answer cuts marked x."""
    draw_curve(ax, curve[curve["grid_cut"]] if "grid_cut" in curve else curve)
    by_cut = curve.set_index("cut_index")["cut_fraction"]
    for ev in events.itertuples():
        a, b = by_cut.get(ev.cut_start), by_cut.get(ev.cut_end)
        if a is None or b is None:
            continue
        if ev.kind == "lucky_guess":
            ax.plot([a], [ev.potential_before], marker="*", ms=12, color=EVENT_COLORS[ev.kind], zorder=5)
        else:
            ax.axvspan(a, b, color=EVENT_COLORS.get(ev.kind, "#999"), alpha=0.25, lw=0)
    if "answer_cut" in curve:
        answer = curve[curve["answer_cut"].astype(bool)]
        ax.scatter(answer["cut_fraction"], answer["potential"], marker="x", color="#333", s=22, zorder=4)


def curve_keys(potentials: pd.DataFrame, max_curves: int) -> list[tuple[str, int]]:
    return list(potentials.groupby(CURVE).groups)[:max_curves]


def figures_job(potentials_path: str, events_path: str, dynamics_path: str, out_dir: str, *, max_curves: int) -> None:
    """The figures of one run: ``events-{i}.png`` per curve, ``distributions.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    potentials, events, traces = read_table(potentials_path), read_table(events_path), read_table(dynamics_path)
    sns.set_theme(style="whitegrid", context="paper")
    grouped = potentials.groupby(CURVE)
    for i, key in enumerate(curve_keys(potentials, max_curves)):
        fig, ax = plt.subplots(figsize=(3.6, 2.2))
        mine = events[(events["problem_id"] == key[0]) & (events["trace_id"] == key[1])]
        draw_events(ax, grouped.get_group(key), mine)
        ax.set_title(f"{key[0]}, trace {key[1]}", fontsize=8)
        ax.set_xlabel("fraction of the trace given", fontsize=7)
        ax.set_ylabel("potential", fontsize=7)
        _save(fig, out / f"events-{i}.png")
    distributions_figure(traces, events, out / "distributions.png")


def distributions_figure(traces: pd.DataFrame, events: pd.DataFrame, path: Path) -> Path:
    """Final accuracy of monotone vs. non-monotone traces; sizes of spikes and of drops."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
    groups = traces.assign(shape=traces["monotone"].map({True: "monotone", False: "non-monotone"}))
    summary = groups.groupby("shape").agg(accuracy=("trace_correct", "mean"), n=("trace_correct", "size"))
    summary = summary.reindex(["monotone", "non-monotone"]).fillna({"accuracy": 0, "n": 0})
    axes[0].bar(summary.index, summary["accuracy"], color=["#1b7837", "#b2182b"])
    for x, (acc, n) in enumerate(zip(summary["accuracy"], summary["n"])):
        axes[0].text(x, acc + 0.02, f"n={int(n)}", ha="center", fontsize=7)
    axes[0].set_ylim(0, 1.1)
    axes[0].set_ylabel("final accuracy of the traces")
    axes[0].set_title("final accuracy vs. monotonicity", fontsize=9)
    bins = np.linspace(0, 1, 21)
    for ax, kind, title in ((axes[1], "spike", "spike sizes (rise)"), (axes[2], "drop", "drop sizes")):
        sizes = events.loc[events["kind"] == kind, "size"].abs()
        ax.hist(sizes, bins=bins, color=EVENT_COLORS[kind])
        ax.set_title(f"{title}, n={len(sizes)}", fontsize=9)
        ax.set_xlabel("change of potential")
        ax.set_xlim(0, 1)
    axes[1].set_ylabel("events")
    fig.tight_layout()
    return _save(fig, path)


def power_figure_job(table_path: str, out: str) -> None:
    """Recall of planted events vs. effect size, one line per N, spikes and drops."""
    table = read_table(table_path)
    sns.set_theme(style="whitegrid", context="paper")
    kinds = list(dict.fromkeys(table["kind"]))
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4.2 * max(1, len(kinds)), 3.0), sharey=True,
                             squeeze=False)
    palette = sns.color_palette("viridis", n_colors=max(1, table["n_samples"].nunique()))
    for ax, kind in zip(axes[0], kinds):
        rows = table[table["kind"] == kind]
        for color, (n, group) in zip(palette, rows.groupby("n_samples")):
            group = group.sort_values("size")
            ax.fill_between(group["size"], group["recall_ci_low"], group["recall_ci_high"], color=color, alpha=0.15, lw=0)
            fpr = group["fpr"].iloc[0]
            ax.plot(group["size"], group["recall"], marker="o", ms=3, color=color, label=f"N={n} (FPR {fpr:.1%})")
        ax.set_title(f"planted {kind}s", fontsize=9)
        ax.set_xlabel("effect size (change of the true potential)")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("recall")
    fig.tight_layout()
    _save(fig, Path(out))


# --------------------------------------------------------------------------- report context


def _simple(name: Any) -> str:
    return re.sub(r"[^a-z0-9.]", "", str(name).lower().rsplit("/", 1)[-1]) if isinstance(name, str) else ""


def protocol_checks(row: dict[str, Any]) -> list[dict[str, Any]]:
    """How one run differs from the paper's measurement: model, dataset, N and grid. Each
    check: ``aspect``, ``ok``, ``ours``, ``paper`` and ``note`` (a clause for the report)."""
    names = {_simple(row.get("model")), _simple(row.get("weights"))}
    paper_names = {_simple(n) for n in PAPER["model_names"]}
    # a model pooled over its datasets is named "a+b": every part must be one of the paper's
    parts = [PAPER["dataset_names"].get(re.sub(r"[^a-z0-9]", "", part.lower()))
             for part in str(row.get("dataset", "")).split("+")]
    dataset = None if None in parts else "+".join(parts)
    n = int(row["n_samples"]) if not _missing(row.get("n_samples")) else None
    checks = [
        ("model", bool(names & paper_names), row.get("weights") or row.get("model"), PAPER["model"]),
        ("dataset", dataset is not None, row.get("dataset"), ", ".join(PAPER["datasets"])),
        ("N", n == PAPER["n_samples"], n, PAPER["n_samples"]),
        ("grid", row.get("cut_grid") == PAPER["cut_grid"], row.get("cut_grid"), PAPER["cut_grid"]),
    ]
    notes = {"model": "the model is {ours}, not {paper}", "dataset": "the dataset {ours} is not one of the paper's ({paper})",
             "N": "N = {ours}, not {paper}", "grid": "the grid is {ours}, not {paper}"}
    return [{"aspect": a, "ok": ok, "ours": ours, "paper": paper,
             "note": "" if ok else notes[a].format(ours=ours, paper=paper)} for a, ok, ours, paper in checks]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def definition_check(row: dict[str, Any], rate: str) -> str:
    """Why our ``rate`` does not mean what the paper's does ("" when it does)."""
    # monotone_rate is descriptive where the table keeps the test-based notion as its own column
    descriptive = not _missing(row.get("monotone_tolerance")) or "no_significant_drop_rate" in row
    if rate == "monotone_rate" and not descriptive:
        return "our monotone is 'no significant drop', a test, not the paper's descriptive notion"
    source_column = LABEL_SOURCE.get(rate)
    if source_column and row.get(source_column) not in LABELLED:
        kind = "spikes" if source_column == "label_source" else "drops"
        return f"no labels of the {kind} (label source {row.get(source_column)})"
    return ""


def thresholds_note(row: dict[str, Any]) -> str:
    """Our thresholds in words: the paper gives none, so they qualify every comparison."""
    correction = f" per curve ({row['correction']})" if row.get("correction") else ""
    parts = [f"{name} = {row[key]:g}" + (correction if key == "alpha" else "")
             for name, key in (("δ_up", "spike_min_rise"), ("δ_down", "tangent_min_drop"), ("α", "alpha"),
                               ("monotone tolerance", "monotone_tolerance"), ("w", "window"))
             if not _missing(row.get(key))]
    return "the thresholds are ours, the paper publishes none: " + ", ".join(parts)


def paper_comparison(rates: pd.DataFrame) -> list[dict[str, Any]]:
    """Our monotone, insight and tangent rates (all traces) beside the paper's, with whether
    and why each run is comparable: the protocol (model, dataset, N, grid) decides for the
    run, each rate also needs the paper's definition (monotone descriptive; insight and
    tangent from labels); the thresholds, which the paper does not publish, are stated."""
    out = []
    by_level = rates["scope"] == "level" if "scope" in rates else False  # a level is no model's number
    for row in rates[(rates["traces"] == "all") & ~by_level].to_dict("records"):
        checks = protocol_checks(row)
        reasons = [c["note"] for c in checks if not c["ok"]]
        comparable = not reasons
        rates_out = []
        for name, paper in PAPER["rates"].items():
            why = definition_check(row, name)
            rates_out.append({"name": name.removesuffix("_rate"), "paper": paper, "ours": row.get(name),
                              "low": row.get(f"{name}_ci_low"), "high": row.get(f"{name}_ci_high"),
                              "comparable": comparable and not why, "why": why,
                              "definition": PAPER["definitions"][name]})
        verdict = (f"Comparable with the paper's {PAPER['model']} numbers" if comparable
                   else f"Not comparable with the paper's {PAPER['model']} numbers: " + "; ".join(reasons))
        out.append({
            "model": row["model"], "dataset": row["dataset"], "trace_source": row["trace_source"],
            "comparable": comparable, "reasons": reasons, "checks": checks,
            "label_source": row.get("label_source"), "drop_label_source": row.get("drop_label_source"),
            "thresholds": thresholds_note(row), "summary": f"{verdict}. {thresholds_note(row).capitalize()}.",
            "rates": rates_out,
        })
    return out


def gallery(run_key: str, potentials: pd.DataFrame, events: pd.DataFrame, texts: dict[tuple[str, int], str],
            figures_dir: str, max_curves: int, context_chars: int = 160) -> list[dict[str, Any]]:
    """One gallery item per curve (in the order of its figures): the figure and its events with
    the text span that caused each (and the text just before, shown on hover)."""
    items = []
    for i, key in enumerate(curve_keys(potentials, max_curves)):
        mine = events[(events["problem_id"] == key[0]) & (events["trace_id"] == key[1])]
        text = texts.get((key[0], int(key[1])), "")
        evs = []
        for ev in mine.sort_values("cut_start").to_dict("records"):
            a = int(ev["char_start"])
            evs.append({**ev, "context": text[max(0, a - context_chars):a] if a >= 0 else ""})
        curve = potentials[(potentials["problem_id"] == key[0]) & (potentials["trace_id"] == key[1])]
        items.append({"problem_id": key[0], "trace_id": int(key[1]), "figure": f"{figures_dir}/events-{i}.png",
                      "events": evs, "correct": bool(curve["trace_correct"].iloc[0])})
    return items


def summary_rows(rates: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of each model pooled over its datasets, then by difficulty level, with the name
    the report shows for each."""
    rows = []
    for scope in ("pooled", "level"):
        chosen = rates[rates["scope"] == scope].copy()
        for row in chosen.to_dict("records"):
            level = row["level"]
            where = (f"{row['dataset']} (pooled)" if scope == "pooled"
                     else f"{row['dataset']} level {int(level) if isinstance(level, float) else level}")
            rows.append({**row, "where": where})
    return rows


def monotone_tolerances(rates: pd.DataFrame) -> list[dict[str, Any]]:
    """The tolerances the rates table reports the monotone rate at (``monotone_rate_tolXX``)."""
    suffixes = sorted({c.removeprefix("monotone_rate_") for c in rates.columns
                       if c.startswith("monotone_rate_tol") and not c.endswith(("_ci_low", "_ci_high"))})
    return [{"suffix": s, "tolerance": int(s.removeprefix("tol")) / 100} for s in suffixes]


def dynamics_context(rates_path: str, runs: list[dict[str, Any]], power_path: str | None, power_figure: str | None,
                     optimized_path: str | None, out_dir: Path, max_curves: int) -> dict[str, Any]:
    """Everything ``dynamics.html.j2`` shows. ``runs``: per curve run its labels and the paths
    of its potentials, traces, events, per-trace table, figures and annotation export."""
    rates = read_table(rates_path)

    def rel(path: str) -> str:  # links from the report's folder (annotations live beside it)
        return Path(os.path.relpath(Path(path).resolve(), out_dir.resolve())).as_posix()

    sections = []
    for run in runs:
        potentials, traces = read_table(run["potentials"]), read_table(run["traces"])
        events = read_table(run["events"])
        texts = {(p, int(t)): x for p, t, x in zip(traces["problem_id"], traces["trace_id"], traces["text"])}
        mine = rates[(rates["model"] == run["model"]) & (rates["dataset"] == run["dataset"])
                     & (rates["trace_source"] == run["trace_source"]) & (rates["scope"] == "dataset")]
        counts = events["kind"].value_counts().to_dict()
        sections.append({
            **{k: run[k] for k in ("model", "dataset", "trace_source")},
            "rows": mine.to_dict("records"), "event_counts": counts,
            "distributions": f"{rel(run['figures'])}/distributions.png",
            "gallery": gallery(run["key"], potentials, events, texts, rel(run["figures"]), max_curves),
            "annotations": rel(run["annotations"]) if run.get("annotations") else None,
        })
    power = read_table(power_path).to_dict("records") if power_path else []
    optimized = read_table(optimized_path).to_dict("records") if optimized_path else []
    pass_columns = sorted({c.removesuffix("_problems") for c in rates.columns
                           if c.startswith("pass_at_") and c.endswith("_problems")},
                          key=lambda c: int(c.split("_")[-1]))
    return {
        "sections": sections, "paper": PAPER, "comparison": paper_comparison(rates),
        "power": power, "power_figure": rel(power_figure) if power_figure else None,
        "optimized": optimized, "pass_columns": pass_columns, "rate_names": list(RATES),
        "monotone_tolerances": monotone_tolerances(rates),
        "summary_rows": summary_rows(rates),
        "power_ns": sorted({int(r["n_samples"]) for r in power}),
        "power_sizes": sorted({float(r["size"]) for r in power}),
        "isnan": lambda x: x is None or (isinstance(x, float) and math.isnan(x)),
    }
