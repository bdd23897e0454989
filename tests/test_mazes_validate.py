"""The validator: every trace our A* emits is valid, every single-event corruption that
breaks an A* invariant is caught, other legal tie orders are accepted; plan checks."""

from __future__ import annotations

import heapq
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cot_potential.mazes.astar import astar, reasoning_text, solution_text
from cot_potential.mazes.generators import GENERATORS, generate
from cot_potential.mazes.maze import Maze, query_text
from cot_potential.mazes.validate import (TraceEvent, check_plan, check_trace, parse_query,
                                          shortest_steps, split_output)

MAZES = st.builds(
    lambda name, size, seed: generate(name, random.Random(seed), size),
    st.sampled_from(sorted(GENERATORS)), st.integers(4, 10), st.integers(0, 2**32 - 1),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def grid_of(maze: Maze):
    return parse_query(query_text(maze), maze.width, maze.height)


def events_of(maze: Maze) -> list[TraceEvent]:
    out = split_output(reasoning_text(astar(maze).events) + " " + solution_text(astar(maze).plan))
    assert out.events is not None and out.plan_status == "plan"
    return list(out.events)


def h(maze: Maze, cell) -> int:
    return abs(cell[0] - maze.goal[0]) + abs(cell[1] - maze.goal[1])


@FAST
@given(MAZES)
def test_every_trace_our_astar_emits_is_valid_and_its_plan_correct(maze):
    search = astar(maze)
    output = split_output(reasoning_text(search.events) + " " + solution_text(search.plan))
    grid = grid_of(maze)
    assert check_trace(grid, output.events).valid
    assert check_plan(grid, output.plan, output.plan_status).correct
    assert len(search.plan) - 1 == shortest_steps(grid)


def _state_before(maze: Maze, events: list[TraceEvent], i: int):
    """Open cells (with g), closed cells and the last closed cell before event ``i`` of a
    valid trace: the test's own replay, no validator code."""
    open_g, closed, last = {maze.start: 0}, set(), None
    for e in events[:i]:
        if e.kind == "close":
            open_g.pop(e.cell)
            closed.add(e.cell)
            last = e
        else:
            open_g[e.cell] = e.g
    return open_g, closed, last


def _caught(maze: Maze, events: list[TraceEvent]) -> bool:
    return not check_trace(grid_of(maze), tuple(events)).valid


@FAST
@given(MAZES, st.data())
def test_a_wrong_cost_is_caught(maze, data):
    events = events_of(maze)
    i = data.draw(st.integers(0, len(events) - 1))
    e = events[i]
    field = data.draw(st.sampled_from(["g", "h"]))
    delta = data.draw(st.integers(-3, 3).filter(lambda d: d != 0 and getattr(e, field) + d >= 0))
    events[i] = TraceEvent(e.kind, e.cell, e.g + delta * (field == "g"), e.h + delta * (field == "h"))
    assert _caught(maze, events)


@FAST
@given(MAZES, st.data())
def test_a_create_of_any_other_cell_is_caught(maze, data):
    """Every eligible neighbour of the node closed last is created exactly once, so moving a
    create anywhere else (wall, off the grid, a non-neighbour, a closed cell, a neighbour
    created already) breaks an invariant. g and h are kept consistent with the new cell."""
    events = events_of(maze)
    creates = [i for i, e in enumerate(events) if e.kind == "create"]
    if not creates:
        return
    i = data.draw(st.sampled_from(creates))
    e = events[i]
    cell = data.draw(st.tuples(st.integers(-1, maze.width), st.integers(-1, maze.height))
                     .filter(lambda c: c != e.cell))
    events[i] = TraceEvent("create", cell, e.g, h(maze, cell))
    assert _caught(maze, events)


def _closes_with_state(maze: Maze, events: list[TraceEvent]):
    for i, e in enumerate(events):
        if e.kind == "close":
            open_g, _, _ = _state_before(maze, events, i)
            yield i, open_g, min(g + h(maze, c) for c, g in open_g.items())


@FAST
@given(MAZES, st.data())
def test_closing_a_node_that_is_not_open_is_caught(maze, data):
    events = events_of(maze)
    i, open_g, _ = data.draw(st.sampled_from(list(_closes_with_state(maze, events))))
    cells = [(x, y) for x in range(-1, maze.width + 1) for y in range(-1, maze.height + 1)]
    cell = data.draw(st.sampled_from([c for c in cells if c not in open_g]))
    events[i] = TraceEvent("close", cell, events[i].g, h(maze, cell))
    assert _caught(maze, events)


@FAST
@given(MAZES, st.data())
def test_closing_an_open_node_whose_f_is_not_the_lowest_is_caught(maze, data):
    events = events_of(maze)
    choices = [(i, c, g) for i, open_g, lowest in _closes_with_state(maze, events)
               for c, g in open_g.items() if g + h(maze, c) > lowest]
    if not choices:
        return
    i, cell, g = data.draw(st.sampled_from(choices))
    events[i] = TraceEvent("close", cell, g, h(maze, cell))  # its own g and h: only f is wrong
    assert _caught(maze, events)


@FAST
@given(MAZES, st.data())
def test_a_missing_create_is_caught(maze, data):
    events = events_of(maze)
    creates = [i for i, e in enumerate(events) if e.kind == "create"]
    if not creates:
        return
    del events[data.draw(st.sampled_from(creates))]
    assert _caught(maze, events)


@FAST
@given(MAZES, st.data())
def test_a_repeated_event_is_caught(maze, data):
    events = events_of(maze)
    i = data.draw(st.integers(0, len(events) - 1))
    events.insert(i + 1, events[i])
    assert _caught(maze, events)


@FAST
@given(MAZES, st.data())
def test_dropping_the_start_or_goal_close_or_writing_past_the_goal_is_caught(maze, data):
    events = events_of(maze)
    how = data.draw(st.sampled_from(["first", "last", "append"]))
    if how == "first":
        del events[0]
    elif how == "last":
        del events[-1]
    else:
        events.append(data.draw(st.sampled_from(events)))
    assert _caught(maze, events)


def tie_variant_astar(maze: Maze) -> list[TraceEvent]:
    """Another legal A*: ties on f go to the *highest* g, then to the node created last."""
    start, goal = maze.start, maze.goal
    best, closed, events, counter = {start: 0}, set(), [], 0
    heap = [(h(maze, start), 0, 0, start)]
    while heap:
        _, neg_g, _, cell = heapq.heappop(heap)
        g = -neg_g
        if cell in closed or g != best[cell]:
            continue
        events.append(TraceEvent("close", cell, g, h(maze, cell)))
        if cell == goal:
            return events
        closed.add(cell)
        for dx, dy in ((-1, 0), (0, 1), (1, 0), (0, -1)):  # another neighbour order, too
            nxt = (cell[0] + dx, cell[1] + dy)
            if maze.is_free(nxt) and nxt not in closed and g + 1 < best.get(nxt, 10**9):
                best[nxt] = g + 1
                counter -= 1
                events.append(TraceEvent("create", nxt, g + 1, h(maze, nxt)))
                heapq.heappush(heap, (g + 1 + h(maze, nxt), -(g + 1), counter, nxt))
    raise AssertionError("unreachable goal")


@FAST
@given(MAZES)
def test_other_legal_tie_breaking_is_accepted(maze):
    assert check_trace(grid_of(maze), tuple(tie_variant_astar(maze))).valid


def test_tie_variants_really_differ_somewhere():
    rng = random.Random(0)
    mazes = [generate("searchformer", rng, 8) for _ in range(20)]
    assert any(tie_variant_astar(m) != events_of(m) for m in mazes)


# ----------------------------------------------------------------------------- plans

OPEN = Maze(4, 3, frozenset({(1, 0), (1, 1)}), (0, 0), (2, 0))  # a wall between start and goal


def test_plan_checks():
    grid = grid_of(OPEN)
    assert check_plan(grid, ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0))).correct
    detour = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (3, 2), (3, 1), (2, 1), (2, 0))
    assert check_plan(grid, detour).status == "suboptimal"
    assert check_plan(grid, ((0, 0), (1, 0), (2, 0))).status == "illegal"  # through a wall
    assert check_plan(grid, ((0, 0), (0, 2), (2, 2), (2, 0))).status == "illegal"  # jumps
    assert check_plan(grid, ((0, 1), (0, 2))).status == "illegal"  # wrong start
    assert check_plan(grid, ((0, 0), (0, 1))).status == "illegal"  # not at the goal
    assert check_plan(grid, None, "no_plan").status == "no_plan"


def test_split_output_reads_the_parts():
    out = split_output("reasoning close 0 0 c0 c2 solution plan 0 0 plan 0 1 end plan 9 9")
    assert out.has_reasoning and out.events == (TraceEvent("close", (0, 0), 0, 2),)
    assert out.plan == ((0, 0), (0, 1))
    assert split_output("reasoning close 0 0 c0").events is None
    assert split_output("reasoning close 0 0 c0 c2").plan_status == "no_plan"
    assert split_output("solution plan 0 x").plan_status == "malformed"
    assert split_output("solution").plan_status == "malformed"
    assert split_output("solution plan 1 2").events == ()


def test_bad_queries_are_rejected_with_the_text():
    with pytest.raises(ValueError, match="not a maze query"):
        parse_query("query start 0 0 goal 1", 3, 3)
    with pytest.raises(ValueError, match="on a wall"):
        parse_query("query start 0 0 goal 1 1 wall 1 1", 3, 3)
