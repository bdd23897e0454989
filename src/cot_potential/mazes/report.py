"""The maze section of the HTML report: example mazes drawn beside their traces, the
accuracy/validity table, learning curves and the potential comparison.

The rule ``maze_report`` draws the figures and writes a JSON context; the report rule reads
it (``cot_potential.report.mazes_context``) and renders ``report/mazes.html.j2``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..ids import slug
from ..tables import read_table, write_json
from .curves import mean_curves
from .drawing import draw_maze, potential_figure, training_figure
from .evaluation import REFERENCE
from .validate import parse_query, split_output

REPORT_DIR = Path("results/report")


def example_problems(problems: pd.DataFrame, n: int) -> list[str]:
    """``n`` problems, one per generator in turn (first of each), so every distribution shows."""
    by_generator = [list(g["problem_id"]) for _, g in problems.groupby("generator", sort=False)]
    picks: list[str] = []
    for i in range(max(map(len, by_generator), default=0)):
        for ids in by_generator:
            if len(picks) < n and i < len(ids):
                picks.append(ids[i])
    return picks


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in df.to_dict("records")]


def _figure(path: Path) -> str:
    return path.resolve().relative_to(REPORT_DIR.resolve()).as_posix()


def examples(runs: list[dict[str, str]], traces: list[str], problems: list[str], items: pd.DataFrame,
             n: int, figures: Path) -> list[dict[str, Any]]:
    """Per example problem: the reference A* and every evaluated model, drawn and written out."""
    out = []
    first_dataset = runs[0]["dataset"]
    table = read_table(problems[0]).set_index("problem_id")
    loaded = {(r["model"], r["dataset"]): read_table(t) for r, t in zip(runs, traces)}
    for k, pid in enumerate(example_problems(table.reset_index(), n)):
        row = table.loc[pid]
        grid = parse_query(row["problem"], row["width"], row["height"])
        entries = [(REFERENCE, "correct", row["reference_trace"] + " " + row["answer"])]
        for r in runs:
            if r["dataset"] != first_dataset:
                continue
            trace = loaded[(r["model"], r["dataset"])]
            entries.append((r["model"], r["data"], trace[trace["problem_id"] == pid]["text"].iloc[0]))
        shown = []
        for j, (model, data, text) in enumerate(entries):
            verdict = items[(items["model"] == model) & (items["problem_id"] == pid)
                            & (items["dataset"] == first_dataset)].iloc[0]
            path = draw_maze(grid, split_output(text), figures / f"example-{k}-{slug(model)}.png",
                             f"{model}: {verdict['plan_status']}")
            shown.append({"model": model, "data": data, "figure": _figure(path), "text": text,
                          "plan_status": verdict["plan_status"],
                          "trace_valid": None if pd.isna(verdict["trace_valid"]) else bool(verdict["trace_valid"]),
                          "trace_error": verdict["trace_error"]})
        out.append({"problem_id": pid, "generator": row["generator"], "size": int(row["width"]),
                    "problem": row["problem"], "astar_closed": int(row["astar_closed"]), "models": shown})
    return out


def report_job(out_context: str, figures_dir: str, *, training: list[str], runs: list[dict[str, str]],
               run_data: dict[str, str], potential_runs: list[dict[str, str]], n_examples: int, evaluation: str | None = None,
               table: str | None = None, traces: list[str] | None = None, problems: list[str] | None = None,
               curves: str | None = None, shapes: str | None = None,
               potentials: list[str] | None = None) -> None:
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    context: dict[str, Any] = {"examples": [], "table": [], "training": [], "curves": []}
    run_names = [Path(p).stem for p in training]
    curves_by_run = {name: read_table(p) for name, p in zip(run_names, training)}
    if any("plan_accuracy" in c for c in curves_by_run.values()):
        context["training_figure"] = _figure(training_figure(curves_by_run, run_data, figures / "training.png"))
    context["training"] = [{"run": name, "data": run_data[name], **_records(c.tail(1))[0]}
                           for name, c in curves_by_run.items()]
    if evaluation:
        items = read_table(evaluation)
        context["table"] = _records(read_table(table))
        context["examples"] = examples(runs, traces or [], problems or [], items, n_examples, figures)
    if curves:
        context["curves"] = _records(read_table(curves))
        means = {r["model"]: mean_curves(read_table(p)) for r, p in zip(potential_runs, potentials or [])}
        context["potential_figure"] = _figure(potential_figure(
            means, {r["model"]: r["data"] for r in potential_runs}, figures / "potentials.png"))
    write_json(out_context, context)
