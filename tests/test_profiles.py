"""Static checks of the SLURM profile (the run against a real scheduler is tests/test_slurm.py)."""

import re

import yaml

from conftest import REPO, snakemake
from test_workflow import rules

PROFILE = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
ENGINE_RULES = {name for _, name, body in rules() if re.search(r"\bgpu=", body)}


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
