"""Shared fixtures: paths, the real SmolLM2 weights (built once per session), workflow runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The benchmark files (see SOURCES.md there): ../shared/data beside the checkout, or
# COT_SHARED_DATA (a git worktree elsewhere).
SHARED_DATA = Path(os.environ.get("COT_SHARED_DATA", REPO.parent / "shared" / "data"))
BIN = Path(sys.executable).parent
WEIGHTS = "smollm2-135m-instruct"

# Subprocesses (Snakemake, its jobs, grading workers) import the package of *this* checkout,
# whichever checkout the environment was installed from.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
)


def shared_file(name: str) -> Path:
    """A benchmark file of ``../shared/data`` (beside the checkout). A fresh clone without it
    skips the tests that read one; CI sets ``COT_REQUIRE_SHARED_DATA=1`` to fail them instead."""
    path = SHARED_DATA / name
    if not path.is_file():
        message = f"benchmark file {path} is missing: these tests read ../shared/data beside the checkout"
        if os.environ.get("COT_REQUIRE_SHARED_DATA"):
            pytest.fail(f"{message} (COT_REQUIRE_SHARED_DATA is set)")
        pytest.skip(message)
    return path


def load_config(name: str = "config/config.yaml") -> dict:
    return yaml.safe_load((REPO / name).read_text())


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True,
              timeout: float = 1800, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real workflow (Snakemake CLI) in ``workdir``."""
    cmd = [str(BIN / "snakemake")]
    if configfile is not None:  # before the other options: --configfile takes several values
        cmd += ["--configfile", str(configfile)]
    cmd += ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("logs/**/*.log")))
        pytest.fail(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{logs}")
    return proc


@pytest.fixture(scope="session")
def resources_dir() -> Path:
    """``resources/`` with the converted SmolLM2 weights, built by the workflow's own rules once.

    Kept across sessions in ``.cache/test-resources`` (git-ignored); CI starts without it.
    """
    cache = Path(os.environ.get("COT_TEST_RESOURCES", REPO / ".cache" / "test-resources"))
    target = cache / "resources" / "models" / WEIGHTS
    if not (target / "config.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        snakemake(cache, f"resources/models/{WEIGHTS}", configfile=REPO / "config" / "config.yaml")
    return cache / "resources"


@pytest.fixture(scope="session")
def smollm2_tokenizer(resources_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resources_dir / "models" / WEIGHTS)


def make_workdir(path: Path, resources: Path, config: dict) -> Path:
    """A working directory with the shared weights linked in and ``config.yaml`` written."""
    path.mkdir(parents=True, exist_ok=True)
    link = path / "resources"
    if not link.exists():
        link.symlink_to(resources, target_is_directory=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path / "config.yaml"


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)


def tiny_config(**overrides) -> dict:
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    config.update(overrides)
    return config


def tiny_shards(run: str = "smollm2-oneshot", dataset: str = "arith") -> int:
    """The shard count the workflow gives a run of the tiny config (rollout_shards)."""
    from cot_potential.config import validate
    from cot_potential.plan import rollout_shards

    return rollout_shards(validate(tiny_config()))[(run, dataset)]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, resources_dir) -> Path:
    """One uninterrupted run of the whole workflow on tests/config/tiny.yaml, shared by every
    end-to-end test module (read it, never write into it)."""
    workdir = tmp_path_factory.mktemp("tiny")
    configfile = make_workdir(workdir, resources_dir, tiny_config())
    snakemake(workdir, configfile=configfile)
    return workdir


def planned(workdir: Path, configfile: Path, *targets: str, options: tuple[str, ...] = (),
            env: dict | None = None) -> tuple[dict, dict]:
    """What a dry run would do: ``{rule: job count}`` (without ``all``) and
    ``{reason: set of rules}`` as Snakemake states them."""
    proc = snakemake(workdir, *targets, *options, "-n", "--quiet", "rules", configfile=configfile, env=env)
    counts, reasons, reason = {}, {}, None
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("all", "total", "job"):
            counts[parts[0]] = int(parts[1])
        elif line.startswith("    ") and not line.startswith("        ") and line.rstrip().endswith(":"):
            reason = line.strip().rstrip(":")
        elif line.startswith("        ") and reason:
            reasons.setdefault(reason, set()).update(r.strip() for r in line.split(",") if r.strip() != "all")
    return counts, reasons
