"""The ``maze_plan`` grader: a completion is correct when its plan is legal and optimal.

The pipeline calls ``grade`` for datasets with ``grader: maze_plan`` (see
``cot_potential.grading.grade_completions``) with the assistant texts (for a prefix: prefix +
continuation), the row-aligned problems (``problem`` = the query, ``width``, ``height``) and
the finish reasons. Plans are judged by ``validate`` from the maze alone; the trace is not
graded here (trace validity is a separate measure, see ``evaluation``).

``extraction``: ``plan`` (a well-formed plan), ``no_plan`` (no ``solution``), ``malformed``
(words after ``solution`` that are not ``plan x y`` triples), ``truncated`` (cut off by the
length limit). Verdicts: ``correct``; ``incorrect`` (illegal, suboptimal or malformed plans);
``no_answer`` (no plan, or truncated, as the math grader counts length cut-offs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .validate import check_plan, parse_query, split_output

VERSION = "maze-plan-1"


def plan_answer(plan: tuple[tuple[int, int], ...] | None) -> str | None:
    return None if plan is None else " ".join(f"{x},{y}" for x, y in plan)


def grade_one(text: str, problem: str, width: int, height: int, finish_reason: str | None) -> dict[str, Any]:
    grid = parse_query(problem, width, height)
    if finish_reason == "length":
        return {"answer": None, "extraction": "truncated", "verdict": "no_answer"}
    output = split_output(text)
    if output.plan_status == "no_plan":
        return {"answer": None, "extraction": "no_plan", "verdict": "no_answer"}
    if output.plan_status == "malformed":
        return {"answer": None, "extraction": "malformed", "verdict": "incorrect"}
    verdict = "correct" if check_plan(grid, output.plan).correct else "incorrect"
    return {"answer": plan_answer(output.plan), "extraction": "plan", "verdict": verdict}


def grade(texts: Sequence[str], problems: pd.DataFrame, finish_reasons: Sequence[str | None], *,
          card: dict[str, Any], settings: Any) -> pd.DataFrame:
    """``answer, answer_key, extraction, verdict`` for every text (``problems`` row-aligned)."""
    missing = {"problem", "width", "height"} - set(problems.columns)
    if missing:
        raise ValueError(f"maze_plan grading needs the problem columns {sorted(missing)} "
                         "(datasets with loader: maze have them)")
    rows = [grade_one(t, p, w, h, f) for t, p, w, h, f in
            zip(texts, problems["problem"], problems["width"], problems["height"], finish_reasons)]
    out = pd.DataFrame(rows, columns=["answer", "extraction", "verdict"])
    out.insert(1, "answer_key", out["answer"].map(lambda a: None if a is None else a.replace(" ", ";")))
    return out
