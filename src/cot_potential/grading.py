"""Grading: extracted answer vs. gold with math-verify, in worker processes that can be killed.

math-verify bounds its own time with ``signal.alarm``: that works only in a main thread and
known inputs hang ``parse`` anyway (math-verify issue #65). So each (gold, answer) pair is
verified in a separate worker *process*; a pair that takes longer than the time bound gets
its worker SIGKILLed and the verdict ``timeout``. Workers also run under a memory limit
(``2^{2^{30}}`` alone takes ~500 MB). Identical pairs are verified once, and gold answers
are parsed once per worker.

The workers run ``python -m cot_potential.grading_worker``, which imports nothing but
math-verify (a worker that imported pandas too would take twice as long to start). Our rules on
top of math-verify (the grading form of both sides, numbers equal only within
``grading.relative_tolerance``) live there too.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .answers import EXTRACTOR_VERSION, extract_answer, normalize_answer

log = logging.getLogger(__name__)

from .grading_worker import (  # noqa: E402 - the worker defines its verdicts and settings
    CORRECT,
    INCORRECT,
    MEMORY_ENV,
    RELATIVE_TOLERANCE_ENV,
    TIMEOUT,
)

NO_ANSWER = "no_answer"
VERDICTS = (CORRECT, INCORRECT, NO_ANSWER, TIMEOUT)


@functools.cache  # read once: planning the paper's study asks for it once per grading job (thousands)
def math_verify_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("math-verify")


def grader_version(kind: str = "math") -> str:
    """Changes whenever a verdict could change: our extractor or the math-verify release."""
    if kind == "math":
        return f"extract-{EXTRACTOR_VERSION}+math-verify-{math_verify_version()}"
    return _other_grader(kind).VERSION


GRADERS = ("math", "maze_plan")


def _other_grader(kind: str):
    """Graders for other problem families, as modules with ``VERSION`` and ``grade``."""
    if kind == "maze_plan":
        from .mazes import plans

        return plans
    raise ValueError(f"unknown grader {kind!r}; known: {GRADERS}")


@dataclass(frozen=True)
class GradingSettings:
    timeout_s: float = 5.0
    workers: int = 2
    memory_mb: int = 4096
    unboxed: str = "no_answer"
    relative_tolerance: float = 1e-5

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> GradingSettings:
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in cfg.items() if k in keys})


class _Worker:
    def __init__(self, memory_mb: int, relative_tolerance: float):
        # The worker runs this very package (not whichever cot_potential the interpreter
        # finds first): a grader and its worker of different versions would disagree.
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, **{MEMORY_ENV: str(memory_mb), RELATIVE_TOLERANCE_ENV: repr(relative_tolerance)},
                   PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cot_potential.grading_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C to the job does not kill workers mid-reply
        )
        self.buffer = b""
        self.task: int | None = None
        self.deadline = 0.0
        self.ready = False

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, task: int, payload: bytes, deadline: float) -> None:
        self.task, self.deadline = task, deadline
        self.proc.stdin.write(payload)
        self.proc.stdin.flush()

    def read_lines(self) -> list[bytes] | None:
        """Complete lines available now, or ``None`` if the worker died."""
        chunk = os.read(self.fileno(), 1 << 16)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return lines

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class GraderPool:
    """Verify (gold, answer) pairs in killable worker processes. Use as a context manager."""

    STARTUP_TIMEOUT_S = 120.0

    def __init__(self, settings: GradingSettings = GradingSettings()):
        if settings.timeout_s <= 0:
            raise ValueError("grading timeout_s must be > 0")
        if not 0 <= settings.relative_tolerance < 1:
            raise ValueError("grading relative_tolerance must be in [0, 1)")
        self.settings = settings
        self._workers: list[_Worker] = []
        # After the first kill, started spares (one per worker) replace killed workers at
        # once: answers that hit the bound come in numbers (a model repeating 9^{9^{9^9}}).
        self._spares: list[_Worker] = []

    def __enter__(self) -> GraderPool:
        self.start()
        return self

    def start(self) -> None:
        """Start the workers now: their start-up (importing math-verify, ~1 s) then overlaps
        with whatever the caller does next (reading tables, extracting answers)."""
        while len(self._workers) < self.settings.workers:
            self._workers.append(self._spawn())

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._workers + self._spares:
            worker.kill()
        self._workers, self._spares = [], []

    def verify(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Verdicts (``correct | incorrect | timeout``) for each pair; duplicates verified once."""
        unique = list(dict.fromkeys(pairs))
        verdicts = self._run(unique)
        lookup = dict(zip(unique, verdicts))
        return [lookup[p] for p in pairs]

    def _spawn(self) -> _Worker:
        worker = _Worker(self.settings.memory_mb, self.settings.relative_tolerance)
        worker.deadline = time.monotonic() + self.STARTUP_TIMEOUT_S
        return worker

    def _run(self, pairs: list[tuple[str, str]]) -> list[str]:
        results: list[str | None] = [None] * len(pairs)
        if not pairs:
            return []
        n_workers = max(1, min(self.settings.workers, len(pairs)))
        while len(self._workers) < n_workers:
            self._workers.append(self._spawn())
        pending = list(range(len(pairs) - 1, -1, -1))  # a stack, popped in order
        done = 0
        selector = selectors.DefaultSelector()
        for worker in self._workers:
            selector.register(worker, selectors.EVENT_READ)

        def dispatch(worker: _Worker) -> None:
            if pending and worker.ready:
                task = pending.pop()
                payload = (json.dumps(pairs[task]) + "\n").encode()
                worker.send(task, payload, time.monotonic() + self.settings.timeout_s)
            else:
                worker.task = None

        def replace(worker: _Worker) -> None:
            selector.unregister(worker)
            worker.kill()
            fresh = self._spares.pop(0) if self._spares else self._spawn()
            while len(self._spares) < len(self._workers):
                self._spares.append(self._spawn())
            if not fresh.ready:
                fresh.deadline = time.monotonic() + self.STARTUP_TIMEOUT_S
            self._workers[self._workers.index(worker)] = fresh
            selector.register(fresh, selectors.EVENT_READ)

        for worker in self._workers:
            dispatch(worker)
        try:
            while done < len(pairs):
                busy = [w for w in self._workers if w.task is not None or not w.ready]
                now = time.monotonic()
                wait = max(0.0, min((w.deadline for w in busy), default=now + 1.0) - now)
                for key, _ in selector.select(timeout=wait):
                    worker: _Worker = key.fileobj
                    lines = worker.read_lines()
                    if lines is None:  # died (e.g. out of memory): the pair is not gradable
                        if not worker.ready:  # died starting: respawning would loop forever
                            raise RuntimeError("a grading worker exited while starting "
                                               "(python -m cot_potential.grading_worker; see the log above)")
                        if worker.task is not None:
                            results[worker.task] = TIMEOUT
                            done += 1
                        replace(worker)
                        continue
                    for line in lines:
                        if line == b"ready":
                            worker.ready = True
                        elif worker.task is not None:
                            results[worker.task] = json.loads(line)
                            done += 1
                            worker.task = None
                    if worker.task is None and worker in self._workers:
                        dispatch(worker)
                now = time.monotonic()
                for worker in list(self._workers):
                    if now < worker.deadline:
                        continue
                    if not worker.ready:
                        raise RuntimeError(
                            f"a grading worker did not start within {self.STARTUP_TIMEOUT_S:.0f} s"
                        )
                    if worker.task is not None:
                        results[worker.task] = TIMEOUT
                        done += 1
                        replace(worker)
                for worker in self._workers:
                    if worker.task is None and worker.ready:
                        dispatch(worker)
        finally:
            selector.close()
        return [r if r is not None else TIMEOUT for r in results]


def grade_texts(
    texts: Iterable[str],
    golds: Sequence[str],
    finish_reasons: Sequence[str | None],
    pool: GraderPool,
    *,
    stop_strings: tuple[str, ...] = (),
    thinking: bool = False,
) -> pd.DataFrame:
    """Extract and grade many assistant texts: columns ``answer, answer_key, extraction, verdict``.

    ``texts`` may be a generator: only the extracted answers are kept, so a shard of long
    completions (prefix + completion of a thinking model can be ~100 kB each) is never held
    in memory as full texts.
    """
    extractions = [
        extract_answer(t, finish_reason=f, stop_strings=stop_strings, thinking=thinking,
                       unboxed=pool.settings.unboxed)
        for t, f in zip(texts, finish_reasons)
    ]
    to_verify = [(g, e.answer) for g, e in zip(golds, extractions) if e.answer is not None]
    verified = iter(pool.verify(to_verify))
    verdicts = [next(verified) if e.answer is not None else NO_ANSWER for e in extractions]
    return pd.DataFrame(
        {
            "answer": [e.answer for e in extractions],
            "answer_key": [normalize_answer(e.answer) for e in extractions],
            "extraction": [e.reason for e in extractions],
            "verdict": verdicts,
        }
    )


def grade_completions(kind: str, texts: Iterable[str], problems: pd.DataFrame,
                      finish_reasons: Sequence[str | None], *, card: dict[str, Any],
                      settings: GradingSettings, pool: GraderPool | None = None) -> pd.DataFrame:
    """Grade assistant texts against their problems (``problems`` is row-aligned with ``texts``).

    ``kind`` is the dataset's grader: ``math`` (boxed answer vs. gold with math-verify) or a
    grader of another problem family (e.g. ``maze_plan``), which gets the same arguments and
    returns the same columns: ``answer, answer_key, extraction, verdict``. A caller grading
    many batches (adaptive sampling, round after round) passes its own open ``pool``.
    """
    if kind != "math":
        return _other_grader(kind).grade(list(texts), problems, finish_reasons, card=card, settings=settings)
    if pool is not None:
        return grade_texts(texts, problems["answer"].tolist(), finish_reasons, pool,
                           stop_strings=tuple(card["stop_strings"]), thinking=card["thinking"])
    with GraderPool(settings) as own:
        return grade_completions(kind, texts, problems, finish_reasons, card=card, settings=settings, pool=own)


def grade_rollouts(prefixes: pd.DataFrame, rollouts: pd.DataFrame, problems: pd.DataFrame, *, kind: str,
                   card: dict[str, Any], settings: GradingSettings,
                   pool: GraderPool | None = None) -> pd.DataFrame:
    """Grade every rollout as its whole assistant text (prefix + completion): one row per
    completion with ``prefix_id, sample, answer, answer_key, extraction, verdict,
    finish_reason, n_tokens``."""
    prefixes = prefixes.set_index("prefix_id")
    problems = problems.set_index("problem_id")
    owner = prefixes.loc[rollouts["prefix_id"]]
    texts = (p + c for p, c in zip(owner["prefix_text"], rollouts["completion_text"]))
    graded = grade_completions(kind, texts, problems.loc[owner["problem_id"]].reset_index(),
                               rollouts["finish_reason"].tolist(), card=card, settings=settings, pool=pool)
    graded.insert(0, "prefix_id", rollouts["prefix_id"].values)
    graded.insert(1, "sample", rollouts["sample"].values)
    graded["finish_reason"] = rollouts["finish_reason"].values
    graded["n_tokens"] = rollouts["n_tokens"].values
    return graded


def grade_job(card_path: str, problems_path: str, prefixes_path: str, rollouts_path: str, out: str,
              *, kind: str, settings: dict[str, Any], config: dict[str, Any]) -> None:
    from .provenance import provenance
    from .tables import read_json, read_table, write_table

    grading = GradingSettings.from_config(settings)
    # Math workers start before the tables are read, so their start-up overlaps the reading.
    with GraderPool(grading) if kind == "math" else contextlib.nullcontext() as pool:
        card = read_json(card_path)
        graded = grade_rollouts(read_table(prefixes_path), read_table(rollouts_path), read_table(problems_path),
                                kind=kind, card=card, settings=grading, pool=pool)
    counts = graded["verdict"].value_counts().to_dict()
    log.info("graded %d completions: %s", len(graded), counts)
    write_table(graded, out, provenance(config, model=card["name"], model_identity=card["identity"],
                                        prompt_version=card["prompt"].get("version"),
                                        grader_version=grader_version(kind), grading=settings,
                                        verdicts=counts, inputs=[rollouts_path, prefixes_path]))


if __name__ == "__main__":  # pragma: no cover - the worker's old entry point
    from .grading_worker import worker_main

    worker_main()
