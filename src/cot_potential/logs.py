"""Job logging: everything a job prints (Python, vLLM, C libraries, child processes) goes to
its rule's ``log:`` file, which stays the record of the job on every executor."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path


# Messages of the ways a job runs out of memory (Python, the CPU allocator of torch, CUDA,
# vLLM's own KV cache check).
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory", "bad_alloc",
                  "defaultcpuallocator", "less than requested memory for kv", "not enough memory",
                  "no available memory for the cache blocks")


def failure_summary(err: BaseException) -> str:
    """One line for the end of a failed job's log: what happened and what to do about it."""
    what = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    nothing_written = ("no output of this job was written (tables are only ever renamed into place "
                       "complete), so the next run redoes exactly this job")
    if isinstance(err, MemoryError) or any(m in str(err).lower() for m in _OUT_OF_MEMORY):
        return (f"OUT OF MEMORY ({what}); {nothing_written}. Give it more memory (resources mem_mb, "
                "--retries with attempt-scaled resources) or need less: a smaller engine.cpu_kvcache_gib / "
                "gpu_memory_utilization / max_num_seqs in the config (these engine settings are "
                "read at run time and rerun nothing that finished).")
    if isinstance(err, KeyboardInterrupt):
        return f"INTERRUPTED; {nothing_written}."
    return f"FAILED ({what}); {nothing_written}."


@contextlib.contextmanager
def job_log(path: str | os.PathLike) -> Iterator[None]:
    """Redirect stdout and stderr (at the file-descriptor level) into ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1, encoding="utf-8") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, force=True,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # The first and last lines: how long the job's own work took, apart from the start of its
        # process and its imports (bench/default reads them to say where a run's time goes).
        log = logging.getLogger("cot_potential")
        log.info("job started (pid %d)", os.getpid())
        started = time.monotonic()
        try:
            yield
            log.info("job done in %.2f s", time.monotonic() - started)
        except BaseException as err:
            log.exception("job failed")
            log.error("%s", failure_summary(err))
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
