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
from cot_potential.engine import cpu_flags, cpu_has_bf16  # noqa: E402


def machine() -> str:
    """One line describing where the numbers come from (benchmarks compare side by side)."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    # the same VM type has come with and without AVX-512: it moves CPU engine times by 4x
    flags = cpu_flags() or set()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX"
    bf16 = "bf16" if cpu_has_bf16() else "no bf16 (engine dtype auto = float32)"
    return (f"{platform.node()}: {os.cpu_count()} CPUs ({model}, {vector}, {bf16}), {mem:.0f} GiB, "
            f"load {load:.1f}, Python {platform.python_version()}")


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


def place_weights(workdir: Path) -> None:
    """Converted weights in place, as after a first run: each model folder of
    ``COT_TEST_RESOURCES`` (the tests' cache) becomes a folder of links in ``workdir`` with a
    fresh Snakemake timestamp. A link to the whole folder would not do: Snakemake sees weights
    older than a fresh checkout's conversion script, converts again, and writes through the link
    into the shared cache. Without ``COT_TEST_RESOURCES`` the workflow builds the weights."""
    source = os.environ.get("COT_TEST_RESOURCES")
    models = Path(source) / "resources" / "models" if source else None
    if models is None or not models.is_dir():
        return
    for folder in sorted(p for p in models.iterdir() if p.is_dir()):
        target = workdir / "resources" / "models" / folder.name
        if target.is_dir():
            continue
        target.mkdir(parents=True)
        for file in folder.iterdir():
            if file.name != ".snakemake_timestamp":
                (target / file.name).symlink_to(file.resolve())
        (target / ".snakemake_timestamp").touch()


def default_config(smoke: bool = False) -> dict:
    """config/config.yaml (the embedded default), or at smoke size: 2 problems x 3 cuts x N = 2,
    no transfer pair, a tiny power curve and KV cache. Smoke runs check that a benchmark runs;
    their numbers mean nothing."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if smoke:
        config["datasets"]["arith"]["n_problems"] = 2
        config["prefixes"]["fractions"] = [0.0, 0.5, 1.0]
        config["rollouts"]["n"] = 2
        config["transfer"]["pairs"] = []
        config["dynamics"]["power"] = {"sizes": [0.5], "ns": [4], "n_curves": 10}
        config["report"]["max_curves"] = 2
        config["engine"]["cpu_kvcache_gib"] = 1
    return config


def header(smoke: bool) -> str:
    """The first lines of every benchmark: the machine, and what was run when (the README lists
    each benchmark's last full run by commit and date)."""
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=7"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    size = "SMOKE size: checks that it runs; the numbers mean nothing" if smoke else "full size"
    return f"machine: {machine()}\nrun: {when}, commit {commit}, {size}"
