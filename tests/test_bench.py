"""The benchmarks in bench/: executables, never timed tests. Each runs here at smoke size
(``--smoke``: a few prefixes, a few samples) so that none can rot unnoticed; their numbers
mean nothing and are never used. The measured numbers (bench/README.md) come from full-size
runs only. The time accounting of bench/default is tested on its own below."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import _timeline as tl  # noqa: E402

BENCHMARKS = ("scale", "grading", "sampling", "rollout", "maze_training", "default")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_is_an_executable_with_help_and_no_required_arguments(name):
    path = REPO / "bench" / name
    assert os.access(path, os.X_OK) and path.read_text().startswith("#!/usr/bin/env python3")
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "positional arguments" not in proc.stdout and "--smoke" in proc.stdout


def test_make_bench_runs_every_benchmark():
    proc = subprocess.run(["make", "-n", "bench", "VENV=/nonexistent"], cwd=REPO,
                          capture_output=True, text=True)
    ran = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip().endswith(BENCHMARKS)]
    assert sorted(ran) == sorted(f"bench/{name}" for name in BENCHMARKS), proc.stdout + proc.stderr


# ------------------------------------------------------------------ smoke runs


def run_benchmark(name: str, *args: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / name), "--smoke", *args], capture_output=True,
                          text=True, timeout=900, env=env)
    out = proc.stdout
    assert proc.returncode == 0, f"bench/{name} failed ({proc.returncode}):\n{out[-3000:]}\n{proc.stderr[-6000:]}"
    lines = [line for line in out.splitlines() if line.strip()]
    assert "SMOKE size" in out and lines[-1].startswith("headline: "), out[-3000:]
    return out


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory, resources_dir) -> dict:
    cache = tmp_path_factory.mktemp("bench-cache")
    return {**os.environ, "COT_BENCH_CACHE": str(cache), "COT_TEST_RESOURCES": str(resources_dir.parent)}


@pytest.fixture(scope="module")
def default_smoke(smoke_env) -> tuple[Path, str]:
    """bench/default at smoke size: a whole default run, whose working directory the
    benchmarks that need a finished run (grading, sampling) and prefixes (rollout) reuse."""
    workdir = Path(smoke_env["COT_BENCH_CACHE"]) / "default-smoke"
    return workdir, run_benchmark("default", "--workdir", str(workdir), env=smoke_env)


@pytest.mark.e2e
def test_bench_default_runs_at_smoke_size(default_smoke):
    _, out = default_smoke
    assert "same completions in both: True" in out
    for stage in (tl.ENGINE_START, tl.GENERATE, tl.GRADING, tl.SNAKEMAKE):
        assert stage in out


@pytest.mark.e2e
@pytest.mark.parametrize("name, args", [("grading", ["--run", "{run}"]), ("sampling", ["--run", "{run}"]),
                                        ("rollout", ["--workdir", "{run}"]), ("scale", []),
                                        ("maze_training", [])])
def test_benchmark_runs_at_smoke_size(name, args, default_smoke, smoke_env):
    workdir, _ = default_smoke
    out = run_benchmark(name, *(a.format(run=workdir) for a in args), env=smoke_env)
    if name == "rollout":
        assert "same completions in both: True" in out


# ------------------------------------------------------------------ bench/default's accounting

SNAKEMAKE_OUTPUT = """\
Select jobs to execute...
Execute 2 jobs...
[Fri Dec  4 15:34:14 2026]
localrule problems:
    output: results/problems/arith.parquet
    log: logs/problems/arith.log
    jobid: 6
    wildcards: dataset=arith
Shell command: None
[Fri Dec  4 15:34:14 2026]
rule generate_traces:
    input: results/models/m/card.json
    log: logs/generate_traces/m/arith.log
    jobid: 1
    threads: 2
[Fri Dec  4 15:34:19 2026]
Finished jobid: 6 (Rule: problems)
1 of 5 steps (20%) done
Finished jobid: 1 (Rule: generate_traces)
"""


def test_snakemake_output_gives_each_job_its_rule_log_and_times():
    stamps = [100.0 + i for i in range(len(SNAKEMAKE_OUTPUT.splitlines()))]
    jobs = tl.parse_snakemake(zip(stamps, SNAKEMAKE_OUTPUT.splitlines()))
    assert {j: (job.rule, job.fields["log"]) for j, job in jobs.items()} == {
        6: ("problems", "logs/problems/arith.log"), 1: ("generate_traces", "logs/generate_traces/m/arith.log")}
    assert (jobs[6].submitted, jobs[6].finished) == (103.0, 116.0)
    assert (jobs[1].submitted, jobs[1].finished) == (110.0, 118.0)


def test_a_job_log_tells_when_the_jobs_own_work_began_and_ended(tmp_path):
    log = tmp_path / "job.log"
    code = ("import time\nfrom cot_potential.logs import job_log\n"
            f"with job_log({str(log)!r}):\n    time.sleep(0.3)\n")
    proc = subprocess.run([sys.executable, "-c", code + "print(__import__('os').getpid())"], check=True,
                          capture_output=True, text=True)
    started, done, pid = tl.read_job_log(log)
    assert started is not None and 0.25 < done - started < 5 and pid == int(proc.stdout)


def job(jobid, rule, submitted, started, finished, engine=None, done=None):
    return tl.Job(jobid, rule, submitted, finished=finished, started=started, done=done, engine=engine)


def test_every_second_of_a_run_goes_to_exactly_one_stage():
    engine = {"began": 12.0, "ready": 20.0, "calls": [{"began": 21.0, "ended": 40.0}]}
    jobs = [job(1, "generate_traces", 10.0, 11.0, 43.0, engine, done=42.0),
            job(2, "grade", 44.0, 46.0, 50.0), job(3, "plot_potentials", 45.0, 47.0, 51.0),
            job(4, "report", 53.0, 54.0, 56.0)]
    seconds = tl.attribute(jobs, 0.0, 60.0)
    assert sum(seconds.values()) == pytest.approx(60.0)
    assert seconds[tl.ENGINE_START] == 8 and seconds[tl.GENERATE] == 19
    assert seconds[tl.ENGINE_JOB] == 1 + 1 + 2  # inputs before the engine, between start and call, tables after
    assert seconds[tl.EXIT] == 1  # from "job done" in its log until Snakemake saw it finish
    # 44-45 grade starts up alone; 45-46 both start up; 46-47 grading beside plotting's start-up; ...
    assert seconds[tl.START_UP] == pytest.approx(1 + 1 + 2 * 0.5 + 0.5 + 1)
    assert seconds[tl.GRADING] == pytest.approx(0.5 + 3 * 0.5)
    assert seconds[tl.PLOTTING] == pytest.approx(3 * 0.5 + 1)
    assert seconds[tl.REPORT] == 2
    assert seconds[tl.SNAKEMAKE] == pytest.approx(10 + 1 + 2 + 4)  # before, between and after the jobs


def test_each_engine_record_belongs_to_the_job_whose_process_wrote_it(tmp_path):
    for name, pid in (("a", 8), ("b", 7)):
        (tmp_path / f"{name}.log").write_text(f"2026-12-04 15:34:14,250 INFO cot_potential: job started (pid {pid})\n")
    jobs = {1: tl.Job(1, "generate_traces", 10.0, {"log": "a.log"}, finished=42.0),
            2: tl.Job(2, "rollout", 43.0, {"log": "b.log"}, finished=90.0)}
    records = [{"pid": 7, "began": 50.0}, {"pid": 8, "began": 12.0}]
    tl.attach(jobs, tmp_path, records)
    assert jobs[1].engine["pid"] == 8 and jobs[2].engine["pid"] == 7
    assert jobs[1].started == datetime(2026, 12, 4, 15, 34, 14, 250000).timestamp()
    with pytest.raises(ValueError, match="matches 0 jobs"):
        tl.attach(jobs, tmp_path, [{"pid": 9, "began": 42.5}])
