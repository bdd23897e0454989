"""Static checks of the SLURM profile (the run against a real scheduler is tests/test_slurm.py)."""

import os
import re
import subprocess

import pytest
import yaml

from conftest import REPO, snakemake
from test_workflow import rules

PROFILE = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
ENGINE_RULES = {name for _, name, body in rules() if re.search(r"\bgpu=", body)}
# What must not wait in a cluster's queue: downloads (compute nodes often have no internet)
# and the small tables and figures.
LOCAL_RULES = {"fetch_gguf", "problems", "model_card", "transfer_table", "dynamics_table", "plot_potentials",
               "plot_transfer", "plot_dynamics", "plot_power", "report"}


def at_attempt(value, attempt: int) -> int:
    """A profile resource as Snakemake evaluates it: a number, or a Python expression of `attempt`."""
    return int(eval(str(value), {"attempt": attempt}))  # noqa: S307 - the project's own profile


def test_the_profile_sets_resources_only_for_rules_of_the_workflow():
    """A renamed rule would silently lose its partition, wall time and memory."""
    assert set(PROFILE["set-resources"]) <= {name for _, name, _ in rules()}


def test_every_engine_rule_gets_a_gpu_partition_wall_time_memory_and_one_task():
    assert ENGINE_RULES >= {"generate_traces", "rollout"}
    for name in ENGINE_RULES:
        assert {"slurm_partition", "runtime", "mem_mb", "tasks_per_gpu"} <= set(PROFILE["set-resources"][name]), name
        assert PROFILE["set-resources"][name]["tasks_per_gpu"] == 0, name


def test_snakemake_reads_the_profile_into_the_jobs_resources(tmp_path):
    proc = snakemake(tmp_path, "-n", "--workflow-profile", str(REPO / "profiles" / "slurm"),
                     configfile=REPO / "config" / "config.yaml")
    jobs = re.findall(r"^rule (\w+):\n(?:.*\n)*?\s+resources: (.*)$", proc.stdout + proc.stderr, re.M)
    resources = {name: dict(item.split("=", 1) for item in text.split(", ")) for name, text in jobs}
    assert {"generate_traces", "rollout"} <= set(resources)  # the default's engine rules
    for name, res in resources.items():
        wanted = {**PROFILE["default-resources"], **PROFILE["set-resources"].get(name, {})}
        if name in ENGINE_RULES:
            assert res["gpu"] == "1" and res["slurm_partition"] == wanted["slurm_partition"], name
        assert res["runtime"] == str(wanted["runtime"]), name
        assert res["mem_mb"] == str(at_attempt(wanted["mem_mb"], 1)), name  # the first submission


def test_the_light_rules_are_localrules_of_the_workflow():
    """The Snakefile's localrules: every rule named exists (Snakemake checks it when it parses
    the workflow, as in the dry run above) and none of them runs an engine or grades. A dry
    run never shows which jobs are local (Snakemake leaves that to the execution), so
    tests/test_slurm.py checks on a real scheduler that they run without sbatch."""
    block = re.search(r"^localrules:\n((?:\s+\w+,\n)+)", (REPO / "Snakefile").read_text(), re.M).group(1)
    declared = set(re.findall(r"(\w+),", block))
    assert declared >= LOCAL_RULES and declared <= {name for _, name, _ in rules()}
    assert not declared & (ENGINE_RULES | {"grade", "power_curve", "maze_train", "maze_training_data"})


def test_failed_jobs_are_retried_with_more_memory():
    """The out-of-memory message recommends it: retries, and every mem_mb grows with the attempt."""
    assert PROFILE["retries"] >= 1
    memories = {"default": PROFILE["default-resources"]["mem_mb"]}
    memories |= {rule: res["mem_mb"] for rule, res in PROFILE["set-resources"].items() if "mem_mb" in res}
    assert set(memories) >= {"default", "rollout", "generate_traces", "grade"}
    for rule, value in memories.items():
        assert at_attempt(value, 1) < at_attempt(value, 2) < at_attempt(value, 3), rule


def make_run(tmp_path, devices: str, env: dict[str, str] | None = None) -> str:
    """The command `make run` would run (make -n) with a fake nvidia-smi listing ``devices``."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {d}: NVIDIA H100 (UUID: GPU-{d})'\n" for d in devices))
    smi.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "COT_POTENTIAL_GPUS")}
    proc = subprocess.run(["make", "-n", "-o", ".venv/.installed-cpu", "EXTRA=cpu", "run"], cwd=REPO,
                          env={**clean, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", **(env or {})},
                          capture_output=True, text=True, timeout=120, check=True)
    return next(line for line in proc.stdout.splitlines() if "snakemake" in line)


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "python").exists(), reason="make run uses .venv/bin/python")
def test_make_run_gives_snakemake_the_gpu_count(tmp_path):
    assert make_run(tmp_path, "0123").endswith("--resources gpu=4")
    assert make_run(tmp_path, "01", {"CUDA_VISIBLE_DEVICES": "1"}).endswith("--resources gpu=1")  # SLURM's share
    assert "--resources" not in make_run(tmp_path, "")  # a CPU machine: no GPU resource
