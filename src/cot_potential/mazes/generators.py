"""Maze generators: Wilson's algorithm (the training distribution) and others for
out-of-distribution tests, after the paper's public generator (kstechly/beyond-semantics-*).

Every generator takes a ``random.Random`` and a grid size and returns a ``Maze``; the same
seed gives the same maze. Walls are cells (not edges between cells).

- ``wilson``, ``dfs`` (recursive backtracker), ``kruskal``: *perfect* mazes (exactly one
  path between two free cells). Rooms sit on every second cell, starting at a random parity
  offset (0 or 1); carving a passage frees the cell between two rooms.
- ``drunkards_walk``: a random walk frees cells until ``coverage`` of the grid is free
  (a cave with loops and open areas).
- ``searchformer``: 30-50% of the cells are walls at random (Lehnert et al., 2024); a
  placement is kept only if the goal is reachable with a plan of at least ``size`` cells.

Start and goal: two distinct free cells drawn uniformly, re-drawn (up to 100 times, then a
new grid) until the goal is reachable with a plan of at least ``min_plan_steps`` steps (the
paper's placement is ``min_plan_steps = 1``: any two distinct cells; on small grids a larger
minimum keeps near-trivial problems, that a greedy walk towards the goal solves, rare).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from .maze import Cell, Maze

STEPS = ((0, -1), (1, 0), (0, 1), (-1, 0))


def _rooms(size: int, rng: random.Random) -> list[Cell]:
    offset = rng.randrange(2)
    return [(x, y) for y in range(offset, size, 2) for x in range(offset, size, 2)]


def _carve(free: set[Cell], a: Cell, b: Cell) -> None:
    """Free rooms ``a``, ``b`` and the wall cell between them."""
    free.update((a, b, ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)))


def _room_neighbours(room: Cell, rooms: set[Cell]) -> list[Cell]:
    x, y = room
    return [(x + 2 * dx, y + 2 * dy) for dx, dy in STEPS if (x + 2 * dx, y + 2 * dy) in rooms]


def _with_endpoints(size: int, free: set[Cell], rng: random.Random, min_plan: int) -> Maze | None:
    """Start and goal on free cells with a plan of at least ``min_plan`` cells, or None."""
    walls = {(x, y) for y in range(size) for x in range(size)} - free
    cells = sorted(free, key=lambda c: (c[1], c[0]))
    if len(cells) < 2:
        return None
    for _ in range(100):
        start, goal = rng.sample(cells, 2)
        length = _plan_cells(free, start, goal)
        if length is not None and length >= min_plan:
            return Maze(size, size, frozenset(walls), start, goal)
    return None


def _plan_cells(free: set[Cell], start: Cell, goal: Cell) -> int | None:
    """Cells on a shortest path from start to goal (both included), or None if unreachable."""
    seen, queue = {start: 1}, deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            return seen[cell]
        for dx, dy in STEPS:
            nxt = (cell[0] + dx, cell[1] + dy)
            if nxt in free and nxt not in seen:
                seen[nxt] = seen[cell] + 1
                queue.append(nxt)
    return None


def wilson(rng: random.Random, size: int, min_plan_steps: int = 1) -> Maze:
    """Wilson's algorithm: loop-erased random walks give a uniform spanning tree of the rooms."""
    rooms = _rooms(size, rng)
    room_set = set(rooms)
    first = rng.choice(rooms)
    in_tree, free = {first}, {first}
    while len(in_tree) < len(rooms):
        walk = [rng.choice([r for r in rooms if r not in in_tree])]
        index = {walk[0]: 0}
        while walk[-1] not in in_tree:
            nxt = rng.choice(_room_neighbours(walk[-1], room_set))
            if nxt in index:  # erase the loop
                del walk[index[nxt] + 1:]
                index = {cell: i for i, cell in enumerate(walk)}
            else:
                index[nxt] = len(walk)
                walk.append(nxt)
        for a, b in zip(walk, walk[1:]):
            _carve(free, a, b)
        in_tree.update(walk)
    return _with_endpoints(size, free, rng, min_plan_steps + 1) or wilson(rng, size, min_plan_steps)


def dfs(rng: random.Random, size: int, min_plan_steps: int = 1) -> Maze:
    """Recursive backtracker: long corridors, few branches."""
    rooms = _rooms(size, rng)
    room_set = set(rooms)
    stack = [rng.choice(rooms)]
    visited, free = {stack[0]}, {stack[0]}
    while stack:
        options = [r for r in _room_neighbours(stack[-1], room_set) if r not in visited]
        if not options:
            stack.pop()
            continue
        nxt = rng.choice(options)
        _carve(free, stack[-1], nxt)
        visited.add(nxt)
        stack.append(nxt)
    return _with_endpoints(size, free, rng, min_plan_steps + 1) or dfs(rng, size, min_plan_steps)


def kruskal(rng: random.Random, size: int, min_plan_steps: int = 1) -> Maze:
    """Randomized Kruskal: passages in random order, kept when they join two components."""
    rooms = _rooms(size, rng)
    room_set = set(rooms)
    parent = {r: r for r in rooms}

    def root(r: Cell) -> Cell:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    edges = [(a, b) for a in rooms for b in _room_neighbours(a, room_set) if a < b]
    rng.shuffle(edges)
    free = set(rooms[:1])
    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
            _carve(free, a, b)
    return _with_endpoints(size, free, rng, min_plan_steps + 1) or kruskal(rng, size, min_plan_steps)


def drunkards_walk(rng: random.Random, size: int, min_plan_steps: int = 1, coverage: float = 0.5) -> Maze:
    """A random walk frees cells until ``coverage`` of the grid is free."""
    target = max(2, int(size * size * coverage))
    x, y = rng.randrange(size), rng.randrange(size)
    free = {(x, y)}
    while len(free) < target:
        options = [(x + dx, y + dy) for dx, dy in STEPS if 0 <= x + dx < size and 0 <= y + dy < size]
        x, y = rng.choice(options)
        free.add((x, y))
    return (_with_endpoints(size, free, rng, min_plan_steps + 1)
            or drunkards_walk(rng, size, min_plan_steps, coverage))


def searchformer(rng: random.Random, size: int, min_plan_steps: int = 1) -> Maze:
    """Random walls on 30-50% of the cells; the plan must have at least ``size`` cells."""
    cells = [(x, y) for y in range(size) for x in range(size)]
    while True:
        n_walls = rng.randint(3 * (size * size // 10), 5 * (size * size // 10))
        shuffled = list(cells)
        rng.shuffle(shuffled)
        maze = _with_endpoints(size, set(shuffled[n_walls:]), rng, max(size, min_plan_steps + 1))
        if maze is not None:
            return maze


GENERATORS: dict[str, Callable[[random.Random, int, int], Maze]] = {
    "wilson": wilson,
    "dfs": dfs,
    "kruskal": kruskal,
    "drunkards_walk": drunkards_walk,
    "searchformer": searchformer,
}


def generate(name: str, rng: random.Random, size: int, min_plan_steps: int = 1) -> Maze:
    """One maze of generator ``name`` on a ``size`` x ``size`` grid."""
    if name not in GENERATORS:
        raise ValueError(f"unknown maze generator {name!r}; known: {sorted(GENERATORS)}")
    if size < 3:
        raise ValueError(f"maze size must be >= 3, got {size}")
    if not 1 <= min_plan_steps <= size * size // 2:
        raise ValueError(f"min_plan_steps must be in [1, {size * size // 2}] on a {size}x{size} grid, "
                         f"got {min_plan_steps}")
    return GENERATORS[name](rng, size, min_plan_steps)
