"""Validity of plans and of A* traces, judged from the maze alone.

This module shares no code with the trace generator (``astar``, ``maze``, ``generators``):
it parses the query and the model's text itself and runs its own breadth-first search. A
trace is not compared with our A*'s trace: ties between open nodes of equal ``f`` make
several expansion orders legal, so the checker replays the bookkeeping and tests A*
*invariants* event by event:

- every event names an in-bounds, free cell and ``h`` is its Manhattan distance to the goal;
- the first event closes the start with ``g = 0``;
- a ``close`` takes an open node, with the ``g`` it was opened with, whose ``f = g + h`` is
  the lowest of all open nodes (any of them on ties), and only after every create the
  previous close called for was written;
- a ``create`` names a 4-neighbour of the node closed last that is not closed, with
  ``g`` = that node's ``g`` + 1, and either new or cheaper than its open entry;
- the goal is closed, and nothing follows its close.

Plans are valid when they are legal (start to goal, one step at a time, never on a wall or
off the grid) and optimal (as short as a shortest path).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

Cell = tuple[int, int]
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    walls: frozenset[Cell]
    start: Cell
    goal: Cell

    def free(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.width and 0 <= cell[1] < self.height and cell not in self.walls


@dataclass(frozen=True)
class TraceEvent:
    kind: str
    cell: Cell
    g: int
    h: int


@dataclass(frozen=True)
class Output:
    """A model's text split into its parts: the reasoning events and the plan."""

    events: tuple[TraceEvent, ...] | None  # None: the reasoning part is not well formed
    reasoning_error: str | None
    plan: tuple[Cell, ...] | None  # None: no plan, or not well formed
    plan_status: str  # "plan" | "no_plan" | "malformed"
    has_reasoning: bool = field(default=False)


@dataclass(frozen=True)
class PlanCheck:
    status: str  # "correct" | "suboptimal" | "illegal" | "malformed" | "no_plan"
    reason: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"


@dataclass(frozen=True)
class TraceCheck:
    valid: bool
    n_events: int
    error_index: int | None  # the first offending event (n_events: the trace ended too early)
    reason: str


def _int(word: str) -> int:
    if not word.isdigit():
        raise ValueError(word)
    return int(word)


def _cost(word: str) -> int:
    if not (word.startswith("c") and word[1:].isdigit()):
        raise ValueError(word)
    return int(word[1:])


def parse_query(text: str, width: int, height: int) -> Grid:
    """``query start sx sy goal gx gy wall x y ...`` on a ``width`` x ``height`` grid."""
    words = text.split()
    try:
        if words[:2] != ["query", "start"] or words[4] != "goal":
            raise ValueError("header")
        start, goal = (_int(words[2]), _int(words[3])), (_int(words[5]), _int(words[6]))
        rest = words[7:]
        if len(rest) % 3 or any(w != "wall" for w in rest[::3]):
            raise ValueError("walls")
        walls = frozenset((_int(x), _int(y)) for x, y in zip(rest[1::3], rest[2::3]))
    except (IndexError, ValueError) as err:
        raise QueryError(f"not a maze query ({err}): {text[:80]!r}") from None
    grid = Grid(int(width), int(height), walls, start, goal)
    if not (grid.free(start) and grid.free(goal)):
        raise QueryError(f"start or goal is off the grid or on a wall: {text[:80]!r}")
    return grid


def split_output(text: str) -> Output:
    """Parse ``[reasoning <events>] solution plan x y ... [end]``."""
    words = text.split()
    if "end" in words:
        words = words[: words.index("end")]
    has_reasoning = bool(words) and words[0] == "reasoning"
    if "solution" in words:
        cut = words.index("solution")
        head, tail = words[:cut], words[cut + 1:]
    else:
        head, tail = words, None
    events, error = _parse_events(head[1:] if has_reasoning else head)
    if tail is None:
        return Output(events, error, None, "no_plan", has_reasoning)
    plan = _parse_plan(tail)
    return Output(events, error, plan, "plan" if plan is not None else "malformed", has_reasoning)


def _parse_events(words: list[str]) -> tuple[tuple[TraceEvent, ...] | None, str | None]:
    events = []
    for i in range(0, len(words), 5):
        group = words[i:i + 5]
        try:
            if len(group) != 5 or group[0] not in ("create", "close"):
                raise ValueError(" ".join(group))
            events.append(TraceEvent(group[0], (_int(group[1]), _int(group[2])), _cost(group[3]), _cost(group[4])))
        except ValueError:
            return None, f"event {len(events)} is malformed: {' '.join(group)!r}"
    return tuple(events), None


def _parse_plan(words: list[str]) -> tuple[Cell, ...] | None:
    if len(words) % 3 or not words:
        return None
    try:
        if any(w != "plan" for w in words[::3]):
            return None
        return tuple((_int(x), _int(y)) for x, y in zip(words[1::3], words[2::3]))
    except ValueError:
        return None


def shortest_steps(grid: Grid) -> int | None:
    """Steps of a shortest start-to-goal path (breadth-first search), None if unreachable."""
    dist, queue = {grid.start: 0}, deque([grid.start])
    while queue:
        cell = queue.popleft()
        if cell == grid.goal:
            return dist[cell]
        for dx, dy in MOVES:
            nxt = (cell[0] + dx, cell[1] + dy)
            if grid.free(nxt) and nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return None


def check_plan(grid: Grid, plan: tuple[Cell, ...] | None, status: str = "plan") -> PlanCheck:
    """Is the plan legal (start to goal in single free steps) and optimal?"""
    if status != "plan" or plan is None:
        return PlanCheck(status if status in ("no_plan", "malformed") else "malformed", status)
    if not plan or plan[0] != grid.start:
        return PlanCheck("illegal", "does not begin at the start")
    for i, cell in enumerate(plan):
        if not grid.free(cell):
            return PlanCheck("illegal", f"step {i} {cell} is a wall or off the grid")
        if i and abs(cell[0] - plan[i - 1][0]) + abs(cell[1] - plan[i - 1][1]) != 1:
            return PlanCheck("illegal", f"step {i} {plan[i - 1]} -> {cell} is not a single move")
    if plan[-1] != grid.goal:
        return PlanCheck("illegal", "does not end at the goal")
    best = shortest_steps(grid)
    if len(plan) - 1 != best:
        return PlanCheck("suboptimal", f"{len(plan) - 1} steps, a shortest plan has {best}")
    return PlanCheck("correct", "legal and optimal")


def _h(grid: Grid, cell: Cell) -> int:
    return abs(cell[0] - grid.goal[0]) + abs(cell[1] - grid.goal[1])


def check_trace(grid: Grid, events: tuple[TraceEvent, ...] | None, parse_error: str | None = None) -> TraceCheck:
    """Replay the A* bookkeeping of ``events`` and report the first broken invariant."""
    if events is None:
        return TraceCheck(False, 0, 0, parse_error or "malformed")
    n = len(events)

    def bad(i: int, reason: str) -> TraceCheck:
        return TraceCheck(False, n, i, reason)

    open_g: dict[Cell, int] = {grid.start: 0}
    closed: set[Cell] = set()
    last: tuple[Cell, int] | None = None
    owed: set[Cell] = set()  # creates the last close calls for that are not written yet
    for i, e in enumerate(events):
        if not grid.free(e.cell):
            return bad(i, f"{e.kind} {e.cell}: a wall or off the grid")
        if e.h != _h(grid, e.cell):
            return bad(i, f"{e.kind} {e.cell}: h = {e.h}, Manhattan distance is {_h(grid, e.cell)}")
        if e.kind == "close":
            if owed:
                return bad(i, f"close before creating {sorted(owed)}, neighbours of {last[0]}")
            if e.cell not in open_g:
                return bad(i, f"close {e.cell}: not an open node")
            if e.g != open_g[e.cell]:
                return bad(i, f"close {e.cell}: g = {e.g}, it was opened with g = {open_g[e.cell]}")
            lowest = min(g + _h(grid, c) for c, g in open_g.items())
            if e.g + e.h != lowest:
                return bad(i, f"close {e.cell}: f = {e.g + e.h}, an open node has f = {lowest}")
            del open_g[e.cell]
            closed.add(e.cell)
            last = (e.cell, e.g)
            if e.cell == grid.goal:
                if i != n - 1:
                    return bad(i + 1, "events after the goal was closed")
                return TraceCheck(True, n, None, "valid")
            owed = {
                nxt for nxt in ((e.cell[0] + dx, e.cell[1] + dy) for dx, dy in MOVES)
                if grid.free(nxt) and nxt not in closed and open_g.get(nxt, 1 << 30) > e.g + 1
            }
        else:
            if last is None:
                return bad(i, f"create {e.cell} before any close")
            parent, parent_g = last
            if abs(e.cell[0] - parent[0]) + abs(e.cell[1] - parent[1]) != 1:
                return bad(i, f"create {e.cell}: not a neighbour of {parent}, the node closed last")
            if e.cell in closed:
                return bad(i, f"create {e.cell}: already closed")
            if e.g != parent_g + 1:
                return bad(i, f"create {e.cell}: g = {e.g}, parent {parent} has g = {parent_g}")
            if e.cell not in owed:
                return bad(i, f"create {e.cell}: already open with g = {open_g.get(e.cell)} <= {e.g}")
            owed.discard(e.cell)
            open_g[e.cell] = e.g
    return bad(n, "the goal is never closed")
