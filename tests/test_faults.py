"""Resource faults: an engine that runs out of memory or returns less than asked fails its
job with a clear message and leaves the shard unwritten (the real-engine test is e2e, in
tests/test_recovery.py)."""

import subprocess
import sys

import pandas as pd
import pytest

from cot_potential.engine import Completion, EngineError, Request, check_completions
from cot_potential.logs import failure_summary
from cot_potential.rollouts import run_rollouts

REQUESTS = [Request([1, 2, 3], 2, 8), Request([1, 2], 1, 8)]


def done(text="x", reason="stop"):
    return Completion((5, 6), text, reason)


@pytest.mark.parametrize(("completions", "message"), [
    ([[done(), done()]], "1 outputs for 2 requests"),
    ([[done()], [done()]], "request 0: 1 of 2 completions"),
    ([[done(), done("half", "abort")], [done()]], "finish reason 'abort'"),
    ([[done(), done()], [done("half", None)]], "finish reason None"),
])
def test_incomplete_engine_outputs_are_errors(completions, message):
    with pytest.raises(EngineError, match=message):
        check_completions(REQUESTS, completions)


def test_complete_outputs_pass():
    check_completions(REQUESTS, [[done(), done("y", "length")], [done()]])


class ShortEngine:
    """An engine that drops a completion, as an aborted request would: checked at the boundary
    where every real engine's outputs are checked (Engine.generate calls check_completions)."""

    def generate(self, requests, sampling, progress=True):
        out = [[done() for _ in range(r.n)] for r in requests]
        out[-1] = out[-1][:-1]
        check_completions(requests, out)
        return out


def test_a_short_engine_output_never_becomes_a_short_shard(tmp_path):
    prefixes = pd.DataFrame({"prefix_id": ["a", "b"], "problem_id": ["p", "p"], "prompt_token_ids": [[1], [1, 2]],
                             "max_tokens": [8, 8]})
    with pytest.raises(EngineError):
        run_rollouts(ShortEngine(), prefixes, n=2, sampling={}, progress=False)


@pytest.mark.parametrize(("err", "start"), [
    (MemoryError(), "OUT OF MEMORY"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), "OUT OF MEMORY"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "OUT OF MEMORY"),
    (ValueError("Available memory on node 0 (3 GiB) on kv cache allocation is less than requested memory for kv"),
     "OUT OF MEMORY"),
    (EngineError("request 0: 1 of 2 completions came back"), "FAILED (EngineError: request 0"),
])
def test_failures_end_the_log_with_what_to_do(err, start):
    summary = failure_summary(err)
    assert summary.startswith(start) and "no output of this job was written" in summary


def test_job_log_writes_the_summary(tmp_path):
    """In a process of its own, as a job is (job_log redirects the real file descriptors)."""
    log = tmp_path / "job.log"
    code = ("from cot_potential.logs import job_log\n"
            f"with job_log({str(log)!r}):\n    raise MemoryError('no room')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    text = log.read_text()
    assert "job failed" in text and "OUT OF MEMORY (MemoryError: no room)" in text, text
