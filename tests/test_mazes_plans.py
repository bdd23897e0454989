"""The maze_plan grader, directly and through the pipeline's grader plug point."""

from __future__ import annotations

import pandas as pd
import pytest

from cot_potential.grading import GradingSettings, grade_completions, grader_version
from cot_potential.mazes import plans

# 3x3, wall in the middle column's top two cells: start (0,0), goal (2,0); shortest = 6 steps.
QUERY = "query start 0 0 goal 2 0 wall 1 0 wall 1 1"
BEST = "solution plan 0 0 plan 0 1 plan 0 2 plan 1 2 plan 2 2 plan 2 1 plan 2 0"


def problems(n):
    return pd.DataFrame({"problem": [QUERY] * n, "width": [3] * n, "height": [3] * n})


def test_verdicts_and_extractions():
    texts = [
        "reasoning close 0 0 c0 c2 " + BEST,  # correct, whatever the trace says
        BEST,
        "solution plan 0 0 plan 1 0 plan 2 0",  # through a wall
        "solution plan 0 0 plan 0 1 plan 0 2 plan 1 2 plan 2 2 plan 2 1",  # stops short
        "solution plan 0 0 plan zero",  # malformed
        "reasoning close 0 0 c0 c2",  # no plan
        BEST,  # correct text, but cut off by the length limit
    ]
    finish = ["stop"] * 6 + ["length"]
    out = plans.grade(texts, problems(len(texts)), finish, card={}, settings=None)
    assert out.columns.tolist() == ["answer", "answer_key", "extraction", "verdict"]
    assert out["verdict"].tolist() == ["correct", "correct", "incorrect", "incorrect", "incorrect",
                                       "no_answer", "no_answer"]
    assert out["extraction"].tolist() == ["plan", "plan", "plan", "plan", "malformed", "no_plan", "truncated"]
    assert out["answer"][0] == "0,0 0,1 0,2 1,2 2,2 2,1 2,0"
    assert out["answer_key"][0] == "0,0;0,1;0,2;1,2;2,2;2,1;2,0"


def test_the_pipeline_dispatches_maze_plan_datasets_here():
    out = grade_completions("maze_plan", iter([BEST]), problems(1), ["stop"], card={}, settings=GradingSettings())
    assert out["verdict"].tolist() == ["correct"]
    assert grader_version("maze_plan") == plans.VERSION


def test_missing_size_columns_are_named():
    with pytest.raises(ValueError, match=r"\['height', 'width'\]"):
        plans.grade([BEST], pd.DataFrame({"problem": [QUERY]}), ["stop"], card={}, settings=None)
