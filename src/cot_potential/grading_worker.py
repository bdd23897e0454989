"""A grading worker process (``grading.GraderPool`` starts and, past the time bound, kills it).

It reads JSON lines ``[gold, answer]`` on stdin and writes one JSON verdict per line, after a
first line ``ready``. It imports nothing but math-verify, the standard library and our own
``answers`` (itself standard library only): a pool's start-up is the fixed cost of every
grading job, and pandas alone would double it.

Two rules of ours sit on top of math-verify (both part of the grader version, see
``answers.EXTRACTOR_VERSION``):

- both sides are put in their grading form first (``answers.grading_form``: ``104.`` is 104,
  ``\\textbf{(073)}`` is 073, ``1e-7`` is ``1\\times10^{-7}``);
- two numbers math-verify calls equal must also agree within a *relative* tolerance.
  math-verify compares a decimal by rounding both sides to 6 decimal places, and other numbers
  by whether their difference evaluates to 0 with small values chopped, so ``0.0000001`` equals
  ``0.0000002`` and ``2^{-80}`` equals ``2^{-81}`` there: an absolute tolerance, which makes
  every small magnitude equal to every other.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Any

CORRECT, INCORRECT, TIMEOUT = "correct", "incorrect", "timeout"
MEMORY_ENV = "COT_POTENTIAL_GRADER_MEMORY_MB"
RELATIVE_TOLERANCE_ENV = "COT_POTENTIAL_GRADER_RELATIVE_TOLERANCE"
# Digits used to evaluate both sides of a comparison: far more than any tolerance needs.
_EVAL_DIGITS = 30


def _evaluated(expr: Any) -> Any:
    return expr.doit().evalf(_EVAL_DIGITS)


def _values(expr: Any) -> list[Any]:
    """The numeric values ``expr`` may stand for: itself, and for a percentage ``X%`` also X
    (math-verify lets ``9%`` equal ``9`` and ``50%`` equal ``0.5``). Empty if not a number."""
    from math_verify.grader import get_pct_val

    percent = get_pct_val(expr, None)
    values = []
    for form in [expr] if percent is None else [expr, percent]:
        try:
            value = _evaluated(form)
        except Exception:  # noqa: BLE001 - whatever cannot be evaluated is not a number
            continue
        if value.is_number and value.is_finite:
            values.append(value)
    return values


def _within(difference: Any, scale: Any, relative_tolerance: float) -> bool:
    try:
        return difference == 0 or bool(abs(difference) <= relative_tolerance * scale)
    except (TypeError, ValueError):  # a comparison sympy cannot decide
        return False


def numbers_agree(a: Any, b: Any, relative_tolerance: float) -> bool | None:
    """Whether ``a`` and ``b`` agree within ``relative_tolerance``; ``None`` where the rule
    does not apply (matrices, sets: math-verify compares their elements one by one).

    Two numbers: relative to the larger magnitude. Two expressions whose difference is a
    number (``x - 10^{-30}`` and ``x - 2\\cdot10^{-30}``, the sides of ``x = ...``): relative
    to the largest number term of either side.
    """
    from math_verify.grader import Basic  # sympy's, as math-verify imports it (sympy is its dependency)

    if not (isinstance(a, Basic) and isinstance(b, Basic)):
        return None
    left, right = _values(a), _values(b)
    if left and right:
        return any(_within(x - y, max(abs(x), abs(y)), relative_tolerance) for x in left for y in right)
    try:
        difference = _evaluated(a - b)
        if not (difference.is_number and difference.is_finite):
            return None
        sides = [_evaluated(side) for side in (a, b)]
        terms = [abs(t) for side in sides for t in (side.args if side.is_Add else (side,)) if t.is_number]
    except Exception:  # noqa: BLE001 - an expression sympy cannot evaluate: math-verify decides
        return None
    return _within(difference, max([abs(difference), *terms]), relative_tolerance)


def install_relative_tolerance(relative_tolerance: float) -> None:
    """Make math-verify's numeric equality also require ``numbers_agree``. It is the one
    function math-verify uses for numbers at every level (plain, inside tuples, intervals,
    sets, matrices and equations), so the rule holds there too. Safe to call again."""
    from math_verify import grader

    original = getattr(grader, "_cot_potential_numeric_eq", grader.sympy_numeric_eq)

    def numeric_eq(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
        if not original(a, b, float_rounding, numeric_precision):
            return False
        return numbers_agree(a, b, relative_tolerance) is not False

    grader._cot_potential_numeric_eq = original
    grader.sympy_numeric_eq = numeric_eq


class Judge:
    """Verdicts of (gold, answer) pairs with our rules on top of math-verify; golds parsed once."""

    def __init__(self, relative_tolerance: float):
        from math_verify import parse, verify

        from cot_potential.answers import grading_form

        install_relative_tolerance(relative_tolerance)
        self._parse, self._verify, self._form = parse, verify, grading_form
        self._golds: dict[str, Any] = {}

    def _parsed(self, text: str) -> Any:
        return self._parse("\\boxed{" + self._form(text) + "}", parsing_timeout=None)

    def __call__(self, gold: str, answer: str) -> str:
        if gold not in self._golds:
            self._golds[gold] = self._parsed(gold)
        target = self._parsed(answer)
        return CORRECT if self._verify(self._golds[gold], target, timeout_seconds=None) else INCORRECT


def worker_main() -> None:  # pragma: no cover - exercised through GraderPool in a subprocess
    import resource

    memory_mb = int(os.environ.get(MEMORY_ENV, "4096"))
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.disable(logging.WARNING)  # math-verify warns on every call with its timeout off
    judge = Judge(float(os.environ[RELATIVE_TOLERANCE_ENV]))

    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        gold, answer = json.loads(line)
        try:
            verdict = judge(gold, answer)
        except (MemoryError, RecursionError):
            verdict = TIMEOUT
        except Exception:  # noqa: BLE001 - an unparsable answer is simply not correct
            verdict = INCORRECT
        out.write(json.dumps(verdict) + "\n")
        out.flush()


if __name__ == "__main__":  # pragma: no cover
    worker_main()
