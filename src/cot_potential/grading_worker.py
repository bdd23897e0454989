"""A grading worker process (``grading.GraderPool`` starts and, past the time bound, kills it).

It reads JSON lines ``[gold, answer]`` on stdin and writes one JSON verdict per line, after a
first line ``ready``. It imports nothing but math-verify and the standard library: a pool's
start-up is the fixed cost of every grading job, and pandas alone would double it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Any

CORRECT, INCORRECT, TIMEOUT = "correct", "incorrect", "timeout"


def worker_main() -> None:  # pragma: no cover - exercised through GraderPool in a subprocess
    import resource

    memory_mb = int(os.environ.get("COT_POTENTIAL_GRADER_MEMORY_MB", "4096"))
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.disable(logging.WARNING)  # math-verify warns on every call with its timeout off
    from math_verify import parse, verify

    gold_cache: dict[str, Any] = {}

    def boxed(s: str) -> str:
        return "\\boxed{" + s + "}"

    def judge(gold: str, answer: str) -> str:
        if gold not in gold_cache:
            gold_cache[gold] = parse(boxed(gold), parsing_timeout=None)
        target = parse(boxed(answer), parsing_timeout=None)
        return CORRECT if verify(gold_cache[gold], target, timeout_seconds=None) else INCORRECT

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
