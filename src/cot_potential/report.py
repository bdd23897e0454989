"""The HTML report: jinja2 (autoescaped: model text is shown as text, never as markup)."""

from __future__ import annotations

import base64
import html as html_lib
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml

from .figures import (curve_figure, curves_grid, mean_curve_figure, transfer_curves_figure,
                      unlock_heatmap)
from .tables import read_json, read_table, write_text, provenance_path

TEMPLATES = Path(__file__).resolve().parents[2] / "report"


@dataclass(frozen=True)
class Run:
    model: str  # slug
    dataset: str

    @property
    def key(self) -> str:
        return f"{self.model}/{self.dataset}"


def figures_job(potentials_path: str, out_dir: str, max_curves: int, formats: Sequence[str] = ("png",)) -> None:
    """All figures of one (model, dataset): mean curve, grid of curves, one file per curve;
    PNG, and each other format of ``formats`` beside it."""
    out = Path(out_dir)
    potentials = read_table(potentials_path)
    mean_curve_figure(potentials, out / "mean.png", formats)
    curves_grid(potentials, out / "grid.png", max_curves, formats)
    for i, (key, curve) in enumerate(potentials.groupby(["problem_id", "trace_id"])):
        if i >= max_curves:
            break
        curve_figure(curve, out / f"curve-{i}.png", f"{key[0]}, trace {key[1]}", formats)


def transfer_figures_job(table_path: str, potentials_path: str, out_dir: str, *, source: str,
                         target: str, dataset: str, fstar_path: str | None = None) -> None:
    """The figures of one transfer (pair, dataset): curves per condition, the heat map and the
    share of unsolved problems unlocked by f."""
    from .figures import transfer_unlocked_figure
    from .unlocks import cumulative_unlocked, unsolved_alone

    out = Path(out_dir)
    table = read_table(table_path)
    mine = table[(table["source"] == source) & (table["target"] == target) & (table["dataset"] == dataset)]
    potentials = read_table(potentials_path)
    transfer_curves_figure(mine, out / "curves.png")
    unlock_heatmap(potentials, unsolved_alone(potentials), out / "heatmap.png")
    if fstar_path is not None:
        fstars = read_table(fstar_path)
        fstars = fstars[(fstars["source"] == source) & (fstars["target"] == target) & (fstars["dataset"] == dataset)]
        fractions = [0.0, *sorted(mine.loc[mine["fraction"] > 0, "fraction"].unique())]
        transfer_unlocked_figure(cumulative_unlocked(fstars, fractions), out / "unlocked.png")


def transfer_context(table_path: str, runs: list[dict[str, str]], figure_dirs: list[str],
                     out_dir: Path) -> dict[str, Any]:
    table = read_table(table_path)
    shown = table[(table["source_traces"] == "all")].sort_values(
        ["source", "target", "dataset", "condition", "fraction", "leak_filter"])
    pairs = []
    for run, fd in zip(runs, figure_dirs):
        rel = Path(fd).resolve().relative_to(out_dir.resolve()).as_posix()
        rows = shown[(shown["source"] == run["source"]) & (shown["target"] == run["target"])
                     & (shown["dataset"] == run["dataset"])]
        split = table[(table["source"] == run["source"]) & (table["target"] == run["target"])
                      & (table["dataset"] == run["dataset"]) & (table["condition"] == "source")
                      & (table["source_traces"] != "all") & (table["leak_filter"] == "all")]
        pairs.append({**run, "curves": f"{rel}/curves.png", "heatmap": f"{rel}/heatmap.png",
                      "unlocked": f"{rel}/unlocked.png", "paired": _paired_rows(table_path, run),
                      "rows": rows.to_dict("records"), "by_correctness": split.to_dict("records")})
    return {"pairs": pairs}


def _paired_rows(table_path: str, run: dict[str, str]) -> list[dict[str, Any]]:
    """The paired comparisons of one (pair, dataset), written beside the transfer table."""
    path = Path(table_path).with_name("transfer_paired.csv")
    if not path.is_file():
        return []
    paired = read_table(path)
    mine = paired[(paired["source"] == run["source"]) & (paired["target"] == run["target"])
                  & (paired["dataset"] == run["dataset"])]
    return mine.sort_values(["leak_filter", "comparison", "fraction"]).to_dict("records")


def maze_context(path: str | None) -> dict[str, Any] | None:
    """The maze section (written by the rule maze_report), if the maze experiment ran."""
    return read_json(path) if path else None


def segments(text: str, curve: pd.DataFrame) -> list[dict[str, Any]]:
    """The trace text split at the cuts, each piece followed by the potential *after* it."""
    pieces, last = [], 0
    for row in curve.sort_values("char_offset").to_dict("records"):
        end = int(row["char_offset"])
        pieces.append({"text": text[last:end], "potential": row["potential"], "n": row["n_samples"],
                       "ci_low": row["ci_low"], "ci_high": row["ci_high"]})
        last = max(last, end)
    if last < len(text):
        pieces.append({"text": text[last:], "potential": None})
    return pieces


def run_summary(potentials: pd.DataFrame, traces: pd.DataFrame) -> dict[str, Any]:
    first = potentials[potentials["cut_index"] == 0]
    last = potentials.loc[potentials.groupby(["problem_id", "trace_id"])["cut_index"].idxmax()]
    return {
        "n_problems": int(traces["problem_id"].nunique()),
        "n_traces": int(len(traces)),
        "trace_accuracy": float(traces["correct"].mean()),
        "mean_pot0": float(first["potential"].mean()),
        "mean_pot_end": float(last["potential"].mean()),
        "share_informative": float(((potentials["potential"] > 0) & (potentials["potential"] < 1)).mean()),
        "n_samples": int(potentials["n_samples"].iloc[0]) if len(potentials) else 0,
        "n_cuts": int(potentials.groupby(["problem_id", "trace_id"]).size().median()),
        "no_answer_rate": float(potentials["n_no_answer"].sum() / max(1, potentials["n_samples"].sum())),
        "truncated_rate": float(potentials["n_truncated"].sum() / max(1, potentials["n_samples"].sum())),
        "timeouts": int(potentials["n_timeout"].sum()),
    }


def run_context(run: Run, potentials: pd.DataFrame, traces: pd.DataFrame, problems: pd.DataFrame,
                card: dict[str, Any], figures_dir: str, max_curves: int) -> dict[str, Any]:
    problem_by_id = problems.set_index("problem_id")
    curves = []
    for i, (key, curve) in enumerate(potentials.groupby(["problem_id", "trace_id"])):
        if i >= max_curves:
            break
        trace = traces[(traces["problem_id"] == key[0]) & (traces["trace_id"] == key[1])].iloc[0]
        text = trace["text"]
        curves.append({
            "problem_id": key[0], "trace_id": int(key[1]),
            "problem": problem_by_id.loc[key[0], "problem"],
            "gold": problem_by_id.loc[key[0], "answer"],
            "trace_answer": trace["answer"], "verdict": trace["verdict"],
            "figure": f"{figures_dir}/curve-{i}.png",
            "segments": segments(text, curve),
            "answers": [
                {"cut": int(r["cut_index"]), "fraction": r["cut_fraction"], "answers": list(r["answers"])[:5],
                 "answer_offset": int(r.get("answer_offset", -1)), "grid": bool(r.get("grid_cut", True)),
                 "drift": top_wrong_answer(r)}
                for r in curve.sort_values("cut_index").to_dict("records")
            ],
        })
    return {
        "model": run.model, "dataset": run.dataset, "card": card,
        "summary": run_summary(potentials, traces),
        "mean_figure": f"{figures_dir}/mean.png", "grid_figure": f"{figures_dir}/grid.png",
        "curves": curves,
    }


def top_wrong_answer(row: dict[str, Any]) -> dict[str, Any] | None:
    """The most frequent wrong answer at a cut and its share of the samples: where the model
    drifts when it does not reach the gold answer."""
    wrong = [a for a in row["answers"] if a["verdict"] == "incorrect"]
    if not wrong:
        return None
    top = max(wrong, key=lambda a: a["count"])
    return {"answer": top["answer"], "share": top["count"] / max(1, int(row["n_samples"]))}


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and x != x)


def render(template: str, context: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda x: "–" if _missing(x) else f"{100 * x:.0f}%"
    env.filters["num"] = lambda x, d=2: "–" if _missing(x) else f"{x:.{d}f}"
    return env.get_template(template).render(**context)


def report_job(runs: list[Run], potentials: list[str], traces: list[str], problems: list[str],
               cards: list[str], figure_dirs: list[str], out: str, *, config: dict[str, Any],
               max_curves: int, transfer_table: str | None = None,
               transfer_runs: list[dict[str, str]] | None = None,
               transfer_figure_dirs: list[str] | None = None,
               dynamics: dict[str, Any] | None = None, mazes_context: str | None = None) -> None:
    out_dir = Path(out).parent
    contexts = []
    for run, pot, tr, pr, cd, fd in zip(runs, potentials, traces, problems, cards, figure_dirs):
        rel = Path(fd).resolve().relative_to(out_dir.resolve()).as_posix()
        contexts.append(run_context(run, read_table(pot), read_table(tr), read_table(pr),
                                    read_json(cd), rel, max_curves))
    provenance = read_json(provenance_path(potentials[0])) if potentials else {}
    transfer = (transfer_context(transfer_table, transfer_runs or [], transfer_figure_dirs or [], out_dir)
                if transfer_table else None)
    dynamics_section = None
    if dynamics and dynamics.get("rates"):
        from .dynamics_report import dynamics_context

        dynamics_section = dynamics_context(dynamics["rates"], dynamics["runs"], dynamics.get("power"),
                                            dynamics.get("power_figure"), dynamics.get("optimized"), out_dir,
                                            max_curves)
        dynamics_section["settings"] = dynamics["settings"]
    html = render("index.html.j2", {
        "runs": contexts,
        "transfer": transfer,
        "dynamics": dynamics_section,
        "mazes": maze_context(mazes_context),
        "config_yaml": yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        "provenance": provenance,
    })
    write_text(out, html)


# An attribute that links a file: our templates write every link as src="..." or href="..."
# (model text is escaped, its quotes too, so it never forms one).
LINK = re.compile(r'\b(src|href)="([^"]*)"')


def standalone_page(index: str, out: str) -> None:
    """The report page as one file: every file it links by a relative path (figures, the
    annotation tables beside the report) embedded as a data URI, so the page shows whole
    wherever it is put, e.g. inside `snakemake --report report.zip` or `report.html`, which
    register it as one file. A linked file that is missing is an error: the page must be whole."""
    page = Path(index)
    html = page.read_text(encoding="utf-8")

    def embed(match: re.Match) -> str:
        attribute, value = match.group(1), html_lib.unescape(match.group(2))
        if not value or value.startswith("#") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", value):
            return match.group(0)  # an anchor, or a URL with a scheme (data:, https:)
        target = page.parent / value
        if not target.is_file():
            raise FileNotFoundError(f"{page} links {value!r}, which is not a file")
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        uri = f"data:{mime};base64,{base64.b64encode(target.read_bytes()).decode('ascii')}"
        # Browsers open no data: URL as a page; a link to a table downloads it under its name.
        download = f' download="{html_lib.escape(target.name)}"' if attribute == "href" else ""
        return f'{attribute}="{uri}"{download}'

    write_text(out, LINK.sub(embed, html))
