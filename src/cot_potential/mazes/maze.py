"""A maze: a grid of cells, some of them walls, with a start and a goal cell.

Coordinates are ``(x, y)``: ``x`` is the column, ``y`` the row, ``y = 0`` the top row, so
"up" is ``y - 1`` (the convention of the paper's generator). The query text lists the walls
row by row: ``query start sx sy goal gx gy wall x y wall x y ...``. It does not state the
grid size (neither does the paper's format): a problem table carries ``width`` and
``height`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

Cell = tuple[int, int]


@dataclass(frozen=True)
class Maze:
    width: int
    height: int
    walls: frozenset[Cell]
    start: Cell
    goal: Cell

    def __post_init__(self) -> None:
        for name in ("start", "goal"):
            cell = getattr(self, name)
            if not self.in_bounds(cell) or cell in self.walls:
                raise ValueError(f"maze {name} {cell} is outside the grid or on a wall")
        if self.start == self.goal:
            raise ValueError("maze start and goal are the same cell")

    def in_bounds(self, cell: Cell) -> bool:
        x, y = cell
        return 0 <= x < self.width and 0 <= y < self.height

    def is_free(self, cell: Cell) -> bool:
        return self.in_bounds(cell) and cell not in self.walls

    def free_cells(self) -> list[Cell]:
        """Free cells in row-major order (the order walls are listed in)."""
        return [(x, y) for y in range(self.height) for x in range(self.width) if (x, y) not in self.walls]

    def sorted_walls(self) -> list[Cell]:
        return sorted(self.walls, key=lambda c: (c[1], c[0]))

    def key(self) -> str:
        """Identity of the maze as a problem (grid, walls, start, goal): used to keep test
        mazes out of the training set."""
        return query_text(self)


def query_text(maze: Maze) -> str:
    """The problem as the models read it (the prompt)."""
    words = ["query", "start", *map(str, maze.start), "goal", *map(str, maze.goal)]
    for x, y in maze.sorted_walls():
        words += ["wall", str(x), str(y)]
    return " ".join(words)

