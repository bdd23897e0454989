"""What each engine was asked, for replaying it bare (bench/default, bench/rollout).

With ``COT_ENGINE_RECORD=DIR`` in the environment, every ``Engine`` writes one JSON file into
``DIR``: its weights, settings, seed and threads, when it began starting and when it was ready
(wall clock, ``time.time()``), its working directory (weights may be a relative path), and
every ``generate`` call: the requests as sent (token ids,
``n``, budget), the sampling settings, when the call began and ended, the tokens it produced
and a digest of its completions. ``bench/_bare_generate.py`` starts ``vllm.LLM`` from such a
file with the engine's own functions and replays the calls, so the bare side does exactly the
work the workflow's engines did, and its digests show whether the completions are identical.
Without the variable nothing is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RECORD_ENV = "COT_ENGINE_RECORD"


def completions_digest(groups: Sequence[Sequence[tuple[str, Sequence[int], str]]]) -> str:
    """One digest of a call's completions: per request, each completion's (text, token ids,
    finish reason), in order."""
    canonical = [[[text, [int(t) for t in token_ids], finish] for text, token_ids, finish in group] for group in groups]
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


class EngineRecord:
    """The record of one engine (see the module docstring); ``None`` from ``open`` when off."""

    def __init__(self, path: Path, head: dict[str, Any]):
        self.path, self.data = path, {**head, "calls": []}

    @classmethod
    def open(cls, *, weights: str, revision: str | None, settings: Any, seed: int,
             threads: int | None, began: float) -> EngineRecord | None:
        folder = os.environ.get(RECORD_ENV)
        if not folder:
            return None
        path = Path(folder) / f"engine-{began:.6f}-{os.getpid()}.json"
        return cls(path, {"weights": weights, "revision": revision, "settings": dataclasses.asdict(settings),
                          "seed": seed, "threads": threads, "cwd": os.getcwd(), "pid": os.getpid(), "began": began})

    def ready(self) -> None:
        self.data["ready"] = time.time()
        self._write()

    def add_call(self, requests: Sequence[Any], sampling: dict[str, Any], began: float,
                 completions: Sequence[Sequence[Any]]) -> None:
        groups = [[(c.text, c.token_ids, c.finish_reason) for c in group] for group in completions]
        self.data["calls"].append({
            "requests": [[[int(t) for t in r.prompt_token_ids], int(r.n), int(r.max_tokens)] for r in requests],
            "sampling": dict(sampling), "began": began, "ended": time.time(),
            "tokens": sum(len(c.token_ids) for group in completions for c in group),
            "digest": completions_digest(groups),
        })
        self._write()

    def _write(self) -> None:
        from .tables import write_text

        write_text(self.path, json.dumps(self.data))


def read_records(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Every engine record in ``folder``, in the order the engines began."""
    records = [json.loads(p.read_text()) for p in Path(folder).glob("engine-*.json")]
    return sorted(records, key=lambda r: r["began"])
