"""Maze generators and the A* trace generator."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cot_potential.mazes.astar import astar, full_text, manhattan
from cot_potential.mazes.generators import GENERATORS, generate
from cot_potential.mazes.maze import Maze, query_text

PERFECT = ("wilson", "dfs", "kruskal")


def components(maze: Maze) -> int:
    free, seen, count = set(maze.free_cells()), set(), 0
    for cell in free:
        if cell in seen:
            continue
        count += 1
        queue = deque([cell])
        seen.add(cell)
        while queue:
            x, y = queue.popleft()
            for nxt in ((x, y - 1), (x + 1, y), (x, y + 1), (x - 1, y)):
                if nxt in free and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
    return count


def adjacent_free_pairs(maze: Maze) -> int:
    free = set(maze.free_cells())
    return sum((x + 1, y) in free for x, y in free) + sum((x, y + 1) in free for x, y in free)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_same_seed_gives_the_same_maze_and_another_seed_another(name):
    assert generate(name, random.Random(3), 7) == generate(name, random.Random(3), 7)
    assert len({generate(name, random.Random(s), 7) for s in range(10)}) > 5


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(GENERATORS)), st.integers(3, 12), st.integers(0, 10**6))
def test_start_and_goal_are_distinct_free_and_connected(name, size, seed):
    maze = generate(name, random.Random(seed), size)
    assert (maze.width, maze.height) == (size, size)
    assert maze.start != maze.goal and maze.is_free(maze.start) and maze.is_free(maze.goal)
    assert astar(maze).plan[-1] == maze.goal


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(PERFECT), st.integers(3, 12), st.integers(0, 10**6))
def test_perfect_mazes_are_trees(name, size, seed):
    """One path between any two free cells: connected, and edges = cells - 1."""
    maze = generate(name, random.Random(seed), size)
    assert components(maze) == 1
    assert adjacent_free_pairs(maze) == len(maze.free_cells()) - 1


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 12), st.integers(0, 10**6))
def test_searchformer_walls_and_plan_length(size, seed):
    maze = generate("searchformer", random.Random(seed), size)
    assert 3 * (size * size // 10) <= len(maze.walls) <= 5 * (size * size // 10)
    assert len(astar(maze).plan) >= size


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 12), st.integers(0, 10**6))
def test_drunkards_walk_is_one_cave_of_half_the_grid(size, seed):
    maze = generate("drunkards_walk", random.Random(seed), size)
    assert components(maze) == 1 and len(maze.free_cells()) == max(2, size * size // 2)


def test_unknown_generator_and_tiny_sizes_are_rejected():
    with pytest.raises(ValueError, match="unknown maze generator 'prim'"):
        generate("prim", random.Random(0), 7)
    with pytest.raises(ValueError, match="size must be >= 3"):
        generate("wilson", random.Random(0), 2)


def test_the_query_lists_walls_row_by_row():
    maze = Maze(3, 2, frozenset({(2, 0), (0, 1)}), (0, 0), (2, 1))
    assert query_text(maze) == "query start 0 0 goal 2 1 wall 2 0 wall 0 1"


def test_astar_format_neighbour_order_and_tie_breaking():
    """Open 3x3 grid, start top-left, goal bottom-right: every node on a monotone path has
    f = 4, so ties decide; the lowest g is closed first, then the one created first."""
    maze = Maze(3, 3, frozenset(), (0, 0), (2, 2))
    search = astar(maze)
    text = full_text(maze, search)
    assert text.startswith("query start 0 0 goal 2 2 reasoning close 0 0 c0 c4 "
                           "create 1 0 c1 c3 create 0 1 c1 c3 close 1 0 c1 c3 create 2 0 c2 c2 create 1 1 c2 c2 "
                           "close 0 1 c1 c3 create 0 2 c2 c2 close 2 0 c2 c2")
    assert text.endswith("close 2 2 c4 c0 solution plan 0 0 plan 1 0 plan 2 0 plan 2 1 plan 2 2 end")
    closes = [e for e in search.events if e.kind == "close"]
    keys = [(e.g + e.h, e.g) for e in closes]
    assert keys == sorted(keys)  # consistent heuristic: f never decreases, then g


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(GENERATORS)), st.integers(4, 10), st.integers(0, 10**6))
def test_costs_are_manhattan_and_unit_steps(name, size, seed):
    maze = generate(name, random.Random(seed), size)
    search = astar(maze)
    assert all(e.h == manhattan(e.cell, maze.goal) for e in search.events)
    assert search.events[0].cell == maze.start and search.events[-1].cell == maze.goal
    assert search.events[-1].kind == "close" and search.events[-1].g == len(search.plan) - 1


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(GENERATORS)), st.integers(5, 9), st.integers(1, 6), st.integers(0, 10**6))
def test_start_and_goal_are_at_least_min_plan_steps_apart(name, size, steps, seed):
    assert len(astar(generate(name, random.Random(seed), size, steps)).plan) - 1 >= steps


def test_min_plan_steps_must_fit_the_grid():
    with pytest.raises(ValueError, match="min_plan_steps"):
        generate("wilson", random.Random(0), 5, 20)
