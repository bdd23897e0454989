"""Plan accuracy, trace validity and length vs. complexity, per model and distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cot_potential.mazes.datasets import maze_problems
from cot_potential.mazes.evaluation import (BASELINE, REFERENCE, baseline_items, greedy_walk, judge,
                                            judge_traces, reference_items, summarize)
from cot_potential.mazes.validate import Grid

SPEC = {"generators": ["wilson", "searchformer"], "sizes": [5, 6], "n_per_generator": 8, "seed": 3}


def test_the_reference_astar_is_always_right_and_its_length_tracks_its_effort():
    problems = maze_problems(SPEC, "t")
    items = reference_items(problems, "t")
    assert items["plan_correct"].all() and items["trace_valid"].all()
    summary = summarize(items).set_index("generator")
    assert summary.loc["all", "plan_accuracy"] == 1.0 and summary.loc["all", "trace_validity"] == 1.0
    assert summary.loc["all", "rho_length_closed"] > 0.95
    assert summary.loc["all", "model"] == REFERENCE and summary.loc["all", "n"] == 16
    assert set(summary.index) == {"wilson", "searchformer", "all"}


def test_a_correct_plan_after_an_invalid_trace_is_counted_as_such():
    problems = maze_problems(SPEC, "t")
    row = problems.iloc[0].to_dict()
    wrong_trace = "reasoning close 0 0 c0 c9 " + row["answer"]  # start and h are wrong
    judged = judge(wrong_trace, "stop", row)
    assert judged["plan_correct"] and judged["trace_valid"] is False and judged["trace_error"]
    assert judge(row["answer"], "stop", row)["trace_valid"] is None  # no trace: not judged
    assert judge(row["answer"], "length", row)["plan_status"] == "truncated"


def test_judge_traces_and_summary_of_a_model():
    problems = maze_problems(SPEC, "t")
    texts = [(r + " " + a) if i % 2 else "reasoning solution plan 0 0"
             for i, (r, a) in enumerate(zip(problems["reference_trace"], problems["answer"]))]
    traces = pd.DataFrame({"problem_id": problems["problem_id"], "trace_id": 0, "text": texts,
                           "finish_reason": "stop", "n_tokens": 10})
    items = judge_traces(traces, problems, {"model": "m", "run": "r", "data": "correct", "dataset": "t"})
    summary = summarize(items).set_index("generator")
    assert summary.loc["all", "plan_accuracy"] == 0.5 and summary.loc["all", "trace_validity"] == 0.5
    assert summary.loc["all", "illegal_rate"] == 0.5
    assert 0 < summary.loc["all", "plan_ci_low"] < 0.5 < summary.loc["all", "plan_ci_high"] < 1


def test_constant_lengths_give_no_correlation():
    problems = maze_problems(SPEC, "t")
    traces = pd.DataFrame({"problem_id": problems["problem_id"], "trace_id": 0, "finish_reason": "stop",
                           "text": "solution plan 0 0", "n_tokens": 4})
    summary = summarize(judge_traces(traces, problems, {"model": "m", "run": "r", "data": "solution",
                                                         "dataset": "t"}))
    assert np.isnan(summary["rho_length_closed"]).all() and np.isnan(summary["trace_validity"]).all()


def test_the_greedy_walk_baseline_solves_open_grids_and_stops_at_dead_ends():
    open_grid = Grid(4, 4, frozenset(), (0, 0), (3, 2))
    assert greedy_walk(open_grid) == [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2)]
    walled = Grid(3, 3, frozenset({(1, 0), (1, 1)}), (0, 0), (2, 0))  # the way round goes down first
    assert greedy_walk(walled) == [(0, 0)]
    items = baseline_items(maze_problems(SPEC, "t"), "t")
    assert set(items["model"]) == {BASELINE} and items["trace_valid"].isna().all()
    assert 0 < items["plan_correct"].mean() < 1


def test_before_and_after_grpo_are_paired_on_the_same_mazes():
    from cot_potential.mazes.evaluation import grpo_comparison

    problems = maze_problems(SPEC, "t")
    full = [r + " " + a for r, a in zip(problems["reference_trace"], problems["answer"])]
    # before: every other maze right with its trace; after: every maze right, half without a trace
    before = [t if i % 2 else "reasoning solution plan 0 0" for i, t in enumerate(full)]
    after = [t if i % 2 else a for i, (t, a) in enumerate(zip(full, problems["answer"]))]
    items = []
    for model, texts, post in (("m", before, "none"), ("m-grpo", after, "grpo")):
        traces = pd.DataFrame({"problem_id": problems["problem_id"], "trace_id": 0, "text": texts,
                               "finish_reason": "stop", "n_tokens": 10})
        items.append(judge_traces(traces, problems, {"model": model, "run": "r", "data": "correct",
                                                     "post_training": post, "dataset": "t"}))
    table = grpo_comparison(pd.concat(items), [("m", "m-grpo")]).set_index("generator")
    row = table.loc["all"]
    assert row["n"] == 16 and row["plan_rate_before"] == 0.5 and row["plan_rate_after"] == 1.0
    assert (row["plan_gained"], row["plan_lost"]) == (8, 0) and abs(row["plan_mcnemar_p"] - 2 * 0.5**8) < 1e-12
    # the valid traces are the same mazes' before and after: no change, p = 1
    assert row["valid_trace_rate_before"] == row["valid_trace_rate_after"] == 0.5
    assert row["valid_trace_mcnemar_p"] == 1.0
    assert row["empty_trace_rate_before"] == row["empty_trace_rate_after"] == 0.5
    assert row["plan_ci_low_before"] < 0.5 < row["plan_ci_high_before"] and row["plan_ci_high_after"] == 1.0
    assert row["mean_trace_words_after"] < row["mean_trace_words_before"]
    assert set(table.index) == {"wilson", "searchformer", "all"} and (table["after"] == "m-grpo").all()
