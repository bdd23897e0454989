"""The workflow through a real SLURM scheduler: a single-node cluster on localhost
(tests/slurm/start-cluster.sh), the SLURM profile with the test cluster's names laid over it
(tests/slurm/override.yaml), the tiny config's potentials with one rollout shard."""

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, make_workdir, snakemake
from test_e2e import DATASET, MODEL, check_potentials_contract, tiny_config

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

SCRIPTS = REPO / "tests" / "slurm"
CLUSTER_DIR = Path(os.environ.get("COT_SLURM_DIR", "/var/lib/cot-slurm"))
TARGET = f"results/potentials/{MODEL}/{DATASET}.parquet"
# Every job of TARGET. One shard: each engine job pays a ~25 s engine start. The localrules
# (downloads) run on the submitting machine, never through sbatch.
EXPECTED_JOBS = {"generate_traces": 1, "cut_prefixes": 1, "rollout": 1, "grade": 1, "potentials": 1}
LOCAL_JOBS = {"problems": 1, "model_card": 1}
ENGINE_RULES = {"generate_traces", "rollout"}


@pytest.fixture(scope="module")
def cluster():
    """A running localhost cluster for this module; stopped afterwards, also on failure."""
    if os.geteuid() != 0:
        message = "starting a SLURM cluster on localhost needs root"
        if os.environ.get("COT_REQUIRE_SLURM"):
            pytest.fail(f"{message} (COT_REQUIRE_SLURM is set: CI must run this test)")
        pytest.skip(message)
    try:
        start = subprocess.run(["bash", str(SCRIPTS / "start-cluster.sh")], capture_output=True,
                               text=True, timeout=600)
        if start.returncode != 0:
            pytest.fail(f"start-cluster.sh failed:\n{start.stdout}\n{start.stderr}")
        yield CLUSTER_DIR / "jobcomp.txt"
    finally:
        subprocess.run(["bash", str(SCRIPTS / "stop-cluster.sh")], timeout=120)


def layered(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid over it: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in over.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = layered(base[key], value) if both_maps else value
    return merged


def jobcomp_records(path: Path) -> list[dict]:
    """jobcomp/filetxt lines: ``Key=value`` fields separated by spaces, one line per job."""
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in path.read_text().splitlines()]


def job_request(job_id: str) -> dict:
    """What SLURM still knows of a finished job (MinJobAge keeps it): comment, GPU request."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                         text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def rule_of(comment: str) -> str:
    """The plugin's job comment is ``rule_<rule>`` or ``rule_<rule>_wildcards_<values>``."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def test_the_workflow_runs_through_slurm_with_the_profile(cluster, tmp_path, resources_dir):
    profile = layered(yaml.safe_load((REPO / "profiles/slurm/profile.yaml").read_text()),
                      yaml.safe_load((SCRIPTS / "override.yaml").read_text()))
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    workdir = tmp_path / "run"
    config = tiny_config(rollouts={"n": 4, "tokens_per_shard": 10**9})  # one shard
    configfile = make_workdir(workdir, resources_dir, config)

    proc = snakemake(workdir, "--executor", "slurm", "--workflow-profile", str(tmp_path / "profile"),
                     TARGET, configfile=configfile)

    # Every rule job went through sbatch and completed: one jobcomp record each.
    run_id = re.search(r"SLURM run ID: (\S+)", proc.stderr).group(1)
    records = [r for r in jobcomp_records(cluster) if r["Name"] == run_id]
    requests = {r["JobId"]: job_request(r["JobId"]) for r in records}
    rules = {r["JobId"]: rule_of(requests[r["JobId"]]["Comment"]) for r in records}
    assert Counter(rules.values()) == EXPECTED_JOBS, records
    for record in records:
        rule = rules[record["JobId"]]
        asked = {**profile["default-resources"], **profile["set-resources"].get(rule, {})}
        assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), record
        assert record["Partition"] == asked.get("slurm_partition", "debug"), record
        assert record["TimeLimit"] == str(asked["runtime"]), record
        first_attempt = eval(str(asked["mem_mb"]), {"attempt": 1})  # noqa: S307 - "64000 * attempt"
        assert f"mem={first_attempt}M" in record["Tres"], record
        gpus = requests[record["JobId"]].get("TresPerJob")
        assert gpus == ("gres:gpu:1" if rule in ENGINE_RULES else None), (rule, gpus)

    # The plugin deletes the SLURM logs of successful jobs: the rule logs are the record.
    assert not list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    for rule, count in {**EXPECTED_JOBS, **LOCAL_JOBS}.items():
        logs = list((workdir / "logs" / rule).rglob("*.log"))
        assert len(logs) == count, rule
        assert rule not in ENGINE_RULES or all(p.stat().st_size > 0 for p in logs), rule

    pot = pd.read_parquet(workdir / TARGET)
    check_potentials_contract(pot)
    assert (workdir / TARGET.replace(".parquet", ".provenance.json")).is_file()
