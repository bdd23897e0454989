"""Reading and writing result tables: atomically, with a provenance sidecar.

A table is only ever visible under its final name once it is complete: it is written to a
temporary file in the same directory and renamed over the target (an atomic operation on
POSIX filesystems). A job killed mid-write therefore leaves either the old file or nothing,
never a truncated parquet that a later stage would take as done.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path`` in one atomic step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are shared files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def provenance_path(path: str | os.PathLike) -> Path:
    """The sidecar next to a table: ``x.parquet`` -> ``x.provenance.json``."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".provenance.json")


def write_table(
    df: pd.DataFrame, path: str | os.PathLike, provenance: dict[str, Any] | None = None
) -> Path:
    """Write a parquet or CSV table atomically, and its provenance sidecar if given.

    The sidecar is written first: a table under its final name always has its own
    provenance next to it, even if the job is killed between the two writes.
    """
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"unsupported table format: {path} (use .parquet or .csv)")

    def write(tmp: Path) -> None:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)

    if provenance is not None:
        write_json(provenance_path(path), provenance)
    atomic_write(path, write)
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"unsupported table format: {path}")


def read_tables(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate tables of one kind (e.g. the shards of a stage)."""
    frames = [read_table(p) for p in paths]
    frames = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
