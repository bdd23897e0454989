"""Seeded arithmetic word problems, easy enough that a 135M model is right *sometimes*.

Potential curves only show something when a model's accuracy on a problem is strictly
between 0 and 1. SmolLM2-135M (one-shot prompt) solves one-operation problems on one-digit
numbers some of the time and two-digit ones almost never, so the knobs are the operand
range, the operations and the number of steps.

A problem of several steps starts with one operation (any of ``operations``) and adds
``steps - 1`` sentences that each add or subtract a number ("Then Sara finds 4 more
shells."). Intermediate results give a trace something to get right or wrong on the way,
which is what lets a potential curve wander off (a tangent) or fall at a mistake (a flaw).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NAMES = ("Tom", "Sara", "Ali", "Mia", "Leo", "Nina", "Sam", "Ana", "Ben", "Eva")
ITEMS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "shells")
CONTAINERS = ("bags", "boxes", "baskets", "jars")
OPERATIONS = ("add", "sub", "mul")
MAX_STEPS = 3
# Later steps, by operation: several phrasings so that traces cannot copy one template.
LATER_STEPS = {
    "add": ("Then {name} finds {c} more {item}.", "After that, {name} buys {c} more {item}.",
            "Later, a friend gives {name} {c} {item}."),
    "sub": ("Then {name} gives away {c} {item}.", "After that, {name} loses {c} {item}.",
            "Later, {name} uses {c} of the {item}."),
}


@dataclass(frozen=True)
class Difficulty:
    """Knobs of the generator (config key ``datasets.<name>.synthetic``)."""

    min_operand: int = 1
    max_operand: int = 9
    operations: tuple[str, ...] = OPERATIONS
    min_steps: int = 1
    max_steps: int = 1
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.min_operand <= self.max_operand:
            raise ValueError(
                f"need 0 <= min_operand <= max_operand, got {self.min_operand}, {self.max_operand}"
            )
        unknown = set(self.operations) - set(OPERATIONS)
        if unknown or not self.operations:
            raise ValueError(f"operations must be a non-empty subset of {OPERATIONS}: {unknown}")
        if not 1 <= self.min_steps <= self.max_steps <= MAX_STEPS:
            raise ValueError(f"steps must satisfy 1 <= min_steps <= max_steps <= {MAX_STEPS}")


def _one_step(rng: random.Random, op: str, d: Difficulty) -> tuple[str, int, str, str]:
    name = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    a = rng.randint(d.min_operand, d.max_operand)
    b = rng.randint(d.min_operand, d.max_operand)
    if op == "add":
        text = f"{name} has {a} {item}. {name} gets {b} more {item}."
        return text, a + b, name, item
    if op == "sub":
        a, b = max(a, b), min(a, b)
        text = f"{name} has {a} {item}. {name} gives {b} {item} to a friend."
        return text, a - b, name, item
    container = rng.choice(CONTAINERS)
    text = f"{name} has {a} {container} with {b} {item} in each of them."
    return text, a * b, name, item


def _question(name: str, item: str) -> str:
    return f" How many {item} does {name} have now?"


def _later_step(rng: random.Random, value: int, name: str, item: str, d: Difficulty) -> tuple[str, int, str]:
    """One more sentence that adds or subtracts. A subtraction leaves at least one item (an
    answer of 0 would be a guessable degenerate case); from one item it becomes an addition.
    Returns ``(text, new value, operation)``."""
    op = rng.choice([o for o in d.operations if o != "mul"] or ["add"])
    c = rng.randint(max(1, d.min_operand), max(1, d.max_operand))
    if op == "sub" and value <= 1:
        op = "add"
    if op == "sub":
        c = min(c, value - 1)
    template = rng.choice(LATER_STEPS[op])
    return " " + template.format(name=name, c=c, item=item), value + c if op == "add" else value - c, op


def generate(n: int, seed: int, difficulty: Difficulty, prefix: str = "arith") -> list[dict]:
    """``n`` problems as records ``problem_id, problem, answer, operations, steps``."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        steps = rng.randint(difficulty.min_steps, difficulty.max_steps)
        op = rng.choice(difficulty.operations)
        text, value, name, item = _one_step(rng, op, difficulty)
        ops = [op]
        for _ in range(steps - 1):
            more, value, later = _later_step(rng, value, name, item, difficulty)
            text += more
            ops.append(later)
        records.append(
            {
                "problem_id": f"{prefix}-{i:04d}",
                "problem": text + _question(name, item),
                "answer": str(value),
                "operations": "+".join(ops),
                "steps": steps,
            }
        )
    return records
