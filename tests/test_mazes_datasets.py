"""Maze problems for the pipeline and the three kinds of training data."""

from __future__ import annotations

import pandas as pd
import pytest

from cot_potential.mazes.datasets import maze_problems, training_mazes, training_sequences
from cot_potential.mazes.validate import check_plan, parse_query, split_output

SPEC = {"generators": ["wilson", "dfs"], "sizes": [5, 6], "n_per_generator": 6, "seed": 4}
TRAIN = {"generator": "wilson", "sizes": [5], "n_mazes": 40, "seed": 1}


def test_maze_problems_are_seeded_distinct_and_carry_their_size():
    problems = maze_problems(SPEC, "mz")
    assert len(problems) == 12 and problems["problem_id"].is_unique and problems["problem"].is_unique
    pd.testing.assert_frame_equal(problems, maze_problems(SPEC, "mz"))
    assert set(problems["generator"]) == {"wilson", "dfs"} and set(problems["width"]) <= {5, 6}
    for row in problems.to_dict("records"):
        grid = parse_query(row["problem"], row["width"], row["height"])
        out = split_output(row["answer"])
        assert check_plan(grid, out.plan, out.plan_status).correct
        assert row["plan_steps"] == len(out.plan) - 1
        assert row["astar_closed"] == row["reference_trace"].split().count("close")


def test_training_mazes_never_include_a_test_problem():
    # 4x4 Wilson mazes are few, so an unfiltered draw repeats test mazes: exclusion must bite.
    test = maze_problems({"generators": ["wilson"], "sizes": [4], "n_per_generator": 30, "seed": 1}, "t")
    spec = {**TRAIN, "sizes": [4]}
    assert set(training_mazes(spec, [])["problem"]) & set(test["problem"])
    train = training_mazes(spec, [test])
    assert len(train) == 40 and train["problem"].is_unique
    assert not set(train["problem"]) & set(test["problem"])


def test_too_few_distinct_mazes_is_a_clear_error():
    with pytest.raises(ValueError, match="distinct mazes"):
        training_mazes({"generator": "wilson", "sizes": [3], "n_mazes": 500, "seed": 0}, [])


def test_the_three_kinds_of_training_sequences():
    mazes = training_mazes(TRAIN, [])
    solution = training_sequences(mazes, "solution", 0)
    correct = training_sequences(mazes, "correct", 0)
    swapped = training_sequences(mazes, "swapped", 0)
    for table in (solution, correct, swapped):
        assert (table["prompt"] == mazes["problem"]).all()
        assert table["completion"].str.endswith(" end").all()
        plans = table["completion"].str.extract(r"(solution .*) end$")[0]
        assert (plans == mazes["answer"]).all()  # every kind keeps the maze's own correct plan
    assert not solution["completion"].str.contains("reasoning").any()
    own = mazes["reference_trace"] + " " + mazes["answer"] + " end"
    assert (correct["completion"] == own).all()
    assert (swapped["trace_of"] != swapped["problem_id"]).all()  # a derangement: nobody keeps its own
    assert sorted(swapped["trace_of"]) == sorted(swapped["problem_id"])  # every trace used once
    donors = mazes.set_index("problem_id")["reference_trace"]
    for row in swapped.to_dict("records"):
        assert row["completion"].startswith(donors[row["trace_of"]] + " solution ")
    assert swapped["trace_of"].tolist() == training_sequences(mazes, "swapped", 0)["trace_of"].tolist()
    assert swapped["trace_of"].tolist() != training_sequences(mazes, "swapped", 1)["trace_of"].tolist()
    with pytest.raises(ValueError, match="unknown training data kind"):
        training_sequences(mazes, "shuffled", 0)
