"""Shared helpers of the benchmarks in bench/: paths, the machine, tables, timing."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
# Subprocesses (Snakemake, its jobs, grading workers) import this checkout's package.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("COT_BENCH_CACHE", REPO / ".cache" / "bench"))


def machine() -> str:
    """One line describing where the numbers come from (benchmarks compare side by side)."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{platform.node()}: {os.cpu_count()} CPUs ({model}), {mem:.0f} GiB, load {load:.1f}, "
            f"Python {platform.python_version()}")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def timed(cmd: Sequence[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of a command; ``proc.cpu_seconds`` is its (and its children's) user + system
    CPU time, which moves much less than wall time when the shared machine is loaded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, proc


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def snakemake_cmd(workdir: Path, configfile: Path, *args: str) -> list[str]:
    return [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), *args]


def link_resources(workdir: Path) -> None:
    """Reuse converted weights (``COT_TEST_RESOURCES``, as the tests do) instead of rebuilding them."""
    source = os.environ.get("COT_TEST_RESOURCES")
    link = workdir / "resources"
    if source and not link.exists() and (Path(source) / "resources").is_dir():
        workdir.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(source) / "resources", target_is_directory=True)
