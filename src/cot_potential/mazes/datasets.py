"""Maze data: the pipeline's maze problems (``loader: maze``) and the training sequences.

Training sequences come in three kinds (the paper's conditions):

- ``solution``: ``query ... solution plan ... end`` (no trace);
- ``correct``: ``query ... reasoning <the maze's own A* trace> solution plan ... end``;
- ``swapped``: the trace of a *different* training maze (a seeded derangement: no maze keeps
  its own), the plan still the maze's own correct plan.

Test problems never occur in training: the training set is drawn from its own seed and every
maze equal to a test problem (same grid, walls, start and goal) is skipped, as is any
repeat within the training set.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..ids import sub_seed
from ..transfer import derangement
from .astar import Search, astar, reasoning_text, solution_text
from .generators import generate
from .maze import Maze, query_text

KINDS = ("solution", "correct", "swapped")


def draw_mazes(generator: str, sizes: list[int], n: int, seed: int, exclude: Iterable[str] = (),
               min_plan_steps: int = 1) -> list[tuple[Maze, Search]]:
    """``n`` distinct mazes (sizes drawn uniformly from ``sizes``) not in ``exclude``."""
    rng = random.Random(seed)
    seen, out = set(exclude), []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"{generator}: only {len(out)} distinct mazes of sizes {sizes} after "
                             f"{attempts} draws; ask for fewer or larger mazes")
        maze = generate(generator, rng, rng.choice(sizes), min_plan_steps)
        if maze.key() in seen:
            continue
        seen.add(maze.key())
        out.append((maze, astar(maze)))
    return out


def problem_rows(mazes: list[tuple[Maze, Search]], prefix: str, generator: str) -> list[dict[str, Any]]:
    """Problem-table rows: the query is the problem, the reference plan the answer."""
    rows = []
    for i, (maze, search) in enumerate(mazes):
        rows.append({
            "problem_id": f"{prefix}-{generator}-{i:05d}",
            "problem": query_text(maze),
            "answer": solution_text(search.plan),
            "generator": generator,
            "width": maze.width,
            "height": maze.height,
            "n_walls": len(maze.walls),
            "plan_steps": len(search.plan) - 1,
            "astar_closed": search.n_closed,
            "astar_events": len(search.events),
            "reference_trace": reasoning_text(search.events),
        })
    return rows


def maze_problems(spec: dict[str, Any], name: str) -> pd.DataFrame:
    """The problems of a ``loader: maze`` dataset: ``n_per_generator`` mazes of each generator."""
    rows = []
    for generator in spec["generators"]:
        mazes = draw_mazes(generator, list(spec["sizes"]), spec["n_per_generator"],
                           sub_seed(spec["seed"], "maze-problems", generator),
                           min_plan_steps=spec.get("min_plan_steps", 1))
        rows += problem_rows(mazes, name, generator)
    return pd.DataFrame(rows)


def training_mazes(spec: dict[str, Any], test_problems: list[pd.DataFrame]) -> pd.DataFrame:
    """The training mazes (``mazes.train`` of the config), none equal to a test problem."""
    exclude = {q for table in test_problems for q in table["problem"]}
    mazes = draw_mazes(spec["generator"], list(spec["sizes"]), spec["n_mazes"],
                       sub_seed(spec["seed"], "maze-train"), exclude, spec.get("min_plan_steps", 1))
    return pd.DataFrame(problem_rows(mazes, "train", spec["generator"]))


def training_sequences(mazes: pd.DataFrame, kind: str, seed: int) -> pd.DataFrame:
    """``problem_id, prompt, completion, trace_of`` for one kind of training data."""
    if kind not in KINDS:
        raise ValueError(f"unknown training data kind {kind!r}; known: {KINDS}")
    traces = dict(zip(mazes["problem_id"], mazes["reference_trace"]))
    if kind == "solution":
        donors = {pid: None for pid in mazes["problem_id"]}
    elif kind == "correct":
        donors = {pid: pid for pid in mazes["problem_id"]}
    else:
        donors = derangement(list(mazes["problem_id"]), sub_seed(seed, "swap"))
    completions = [
        (f"{traces[donors[pid]]} " if donors[pid] else "") + f"{plan} end"
        for pid, plan in zip(mazes["problem_id"], mazes["answer"])
    ]
    return pd.DataFrame({
        "problem_id": mazes["problem_id"],
        "prompt": mazes["problem"],
        "completion": completions,
        "trace_of": [donors[pid] for pid in mazes["problem_id"]],
        "width": mazes["width"],
        "height": mazes["height"],
    })


def training_data_job(test_problem_paths: list[str], out_mazes: str, out_validation: str,
                      out_sequences: dict[str, str], *, spec: dict[str, Any], eval_mazes: int,
                      config: dict[str, Any]) -> None:
    """Draw the training and validation mazes and write every kind of training sequence."""
    import logging

    from ..provenance import provenance
    from ..tables import read_table, write_table

    tests = [read_table(p) for p in test_problem_paths]
    drawn = training_mazes({**spec, "n_mazes": spec["n_mazes"] + eval_mazes}, tests)
    train, validation = drawn.iloc[: spec["n_mazes"]], drawn.iloc[spec["n_mazes"]:]
    validation = validation.assign(problem_id=validation["problem_id"].str.replace("train-", "validation-", n=1))
    record = provenance(config, train=spec, eval_mazes=eval_mazes, excluded=len(set().union(
        *(set(t["problem"]) for t in tests))))
    write_table(train.reset_index(drop=True), out_mazes, record)
    write_table(validation.reset_index(drop=True), out_validation, record)
    for kind, path in out_sequences.items():
        write_table(training_sequences(train.reset_index(drop=True), kind, spec["seed"]), path,
                    {**record, "kind": kind})
    logging.getLogger(__name__).info(
        "%d training mazes (mean %.1f A* closes, %.1f plan steps), %d validation mazes",
        len(train), train["astar_closed"].mean(), train["plan_steps"].mean(), len(validation))
