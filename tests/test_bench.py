"""The benchmarks in bench/ are executables, never tests: this only checks that they exist,
take no required arguments and are what `make bench` runs (nothing here is timed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("scale", "grading", "sampling", "rollout")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_is_an_executable_with_help_and_no_required_arguments(name):
    path = REPO / "bench" / name
    assert os.access(path, os.X_OK) and path.read_text().startswith("#!/usr/bin/env python3")
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "positional arguments" not in proc.stdout


def test_make_bench_runs_the_four_benchmarks():
    proc = subprocess.run(["make", "-n", "bench", "VENV=/nonexistent"], cwd=REPO,
                          capture_output=True, text=True)
    ran = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip().endswith(BENCHMARKS)]
    assert ran == [f"bench/{name}" for name in BENCHMARKS], proc.stdout + proc.stderr
