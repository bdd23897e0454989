"""A* search with a trace of its bookkeeping, in the paper's token format.

``query start sx sy goal gx gy wall x y ... reasoning create x y cG cH ... close x y cG cH ...
solution plan x y ... end``

The search (as in the paper's generator): Manhattan heuristic, unit step costs, neighbours
in the order up, right, down, left (``y - 1`` is up). Popping a node from the open set writes
``close x y cG cH``; the goal's close ends the search. Each in-bounds, free, not yet closed
neighbour whose cost improves (``g + 1`` below its best so far) is written as
``create x y cG cH`` and pushed.

Tie-breaking (deterministic): the open node with the lowest ``f = g + h`` is closed; among
equal ``f`` the lowest ``g`` (as the paper's generator orders its heap); among equal ``f``
and ``g`` the one created first. Stale heap entries (a node re-created with a lower cost, or
already closed) are skipped without an event.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from .maze import Cell, Maze, query_text

NEIGHBOUR_ORDER = ((0, -1), (1, 0), (0, 1), (-1, 0))  # up, right, down, left


@dataclass(frozen=True)
class Event:
    kind: str  # "create" | "close"
    cell: Cell
    g: int
    h: int

    def words(self) -> list[str]:
        return [self.kind, str(self.cell[0]), str(self.cell[1]), f"c{self.g}", f"c{self.h}"]


@dataclass(frozen=True)
class Search:
    events: tuple[Event, ...]
    plan: tuple[Cell, ...]  # start ... goal

    @property
    def n_closed(self) -> int:
        return sum(e.kind == "close" for e in self.events)


def manhattan(a: Cell, b: Cell) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def astar(maze: Maze) -> Search:
    """The A* search of ``maze`` with its events and the plan it finds."""
    goal = maze.goal
    best_g = {maze.start: 0}
    parent: dict[Cell, Cell] = {}
    closed: set[Cell] = set()
    events: list[Event] = []
    counter = 0
    heap = [(manhattan(maze.start, goal), 0, counter, maze.start)]
    while heap:
        _, g, _, cell = heapq.heappop(heap)
        if cell in closed or g != best_g[cell]:
            continue
        events.append(Event("close", cell, g, manhattan(cell, goal)))
        if cell == goal:
            return Search(tuple(events), _path(parent, maze.start, goal))
        closed.add(cell)
        for dx, dy in NEIGHBOUR_ORDER:
            nxt = (cell[0] + dx, cell[1] + dy)
            if not maze.is_free(nxt) or nxt in closed or g + 1 >= best_g.get(nxt, 1 << 30):
                continue
            best_g[nxt], parent[nxt] = g + 1, cell
            h = manhattan(nxt, goal)
            events.append(Event("create", nxt, g + 1, h))
            counter += 1
            heapq.heappush(heap, (g + 1 + h, g + 1, counter, nxt))
    raise ValueError(f"the goal {goal} is unreachable from {maze.start}")


def _path(parent: dict[Cell, Cell], start: Cell, goal: Cell) -> tuple[Cell, ...]:
    path = [goal]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return tuple(reversed(path))


def reasoning_text(events: tuple[Event, ...] | list[Event]) -> str:
    return " ".join(["reasoning"] + [w for e in events for w in e.words()])


def solution_text(plan: tuple[Cell, ...]) -> str:
    return " ".join(["solution"] + [w for x, y in plan for w in ("plan", str(x), str(y))])


def full_text(maze: Maze, search: Search) -> str:
    """The whole sequence of the correct-trace format (query, trace, plan, ``end``)."""
    return " ".join([query_text(maze), reasoning_text(search.events), solution_text(search.plan), "end"])
