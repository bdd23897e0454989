"""One interface for every problem source: ``load_problems(spec) -> DataFrame``.

Whatever the source (the synthetic generator, a JSONL file with its own field names, or a
Hugging Face dataset), the result is a table with ``problem_id``, ``problem``, ``answer``
(always a string: AIME answers may be ints or zero-padded strings) and any metadata columns
asked for. Everything downstream sees only this table.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from . import synthetic

log = logging.getLogger(__name__)

REQUIRED = ("problem_id", "problem", "answer")

# Control characters that JSON escaping leaves behind when a LaTeX backslash was lost:
# "\frac" written into JSON without escaping becomes form feed + "rac". Only characters that
# never occur in problem text on their own are repaired, and only when a letter follows.
_LATEX_ESCAPES = {"\f": "\\f", "\t": "\\t", "\b": "\\b", "\v": "\\v", "\a": "\\a"}
_MANGLED = re.compile("[" + "".join(_LATEX_ESCAPES) + "](?=[A-Za-z])")
# Other control characters (NUL, escape, ...) have no place in problem text at all.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class DatasetError(ValueError):
    """A record or a dataset spec is unusable; the message names the offending record."""


def repair_control_characters(text: str) -> str:
    """Undo lost LaTeX backslashes (form feed + ``rac`` -> ``\\frac``, tab + ``riangle`` ->
    ``\\triangle``), then drop any other control character except tab and newlines."""
    return _CONTROL.sub("", _MANGLED.sub(lambda m: _LATEX_ESCAPES[m.group(0)], text))


def has_bad_control_characters(text: str) -> bool:
    return bool(_MANGLED.search(text) or _CONTROL.search(text))


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    # Read bytes and decode line by line, so invalid UTF-8 names its line.
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DatasetError(
                    f"{path}:{lineno}: not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})"
                ) from err
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def _as_text(value: Any, what: str, where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise DatasetError(f"{where}: {what} is {value!r}, expected text or a number")
    if isinstance(value, float) and not math.isfinite(value):  # json accepts NaN and Infinity
        raise DatasetError(f"{where}: {what} is {value!r}, expected text or a finite number")
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise DatasetError(f"{where}: {what} has type {type(value).__name__}, expected text")
    if not value.strip():
        raise DatasetError(f"{where}: {what} is empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate from a JSON escape such as "\ud800"
        raise DatasetError(f"{where}: {what} is not valid Unicode text "
                           f"(lone surrogate {value[err.start]!r} at position {err.start})") from err
    return value


def read_text_fields(path: str | Path, fields: dict[str, str]) -> pd.DataFrame:
    """A JSONL file as a table of text columns (``column -> source field``), every record
    validated (field present, non-empty valid text), errors naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no file at {path}")
    rows = []
    for lineno, record in _read_jsonl(path):
        where = f"{path}:{lineno}"
        row = {}
        for column, key in fields.items():
            if key not in record:
                raise DatasetError(f"{where}: missing field {key!r} (has {sorted(record)})")
            row[column] = _as_text(record[key], key, where)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(fields))


def normalize_records(
    records: Iterable[tuple[str, dict]], spec: dict[str, Any], name: str
) -> pd.DataFrame:
    """Map source fields to the standard columns, validate and (optionally) repair each record.

    ``records`` yields ``(where, record)``; ``where`` names the record in error messages.
    """
    fields = {"id": None, "problem": "problem", "answer": "answer", **spec.get("fields", {})}
    pattern = re.compile(spec["answer_pattern"], re.S) if spec.get("answer_pattern") else None
    on_control = spec.get("control_characters", "repair")
    metadata = list(spec.get("metadata", []))
    rows, seen, rejected = [], set(), []
    for index, (where, record) in enumerate(records):
        for key in (fields["problem"], fields["answer"]) + ((fields["id"],) if fields["id"] else ()):
            if key not in record:
                raise DatasetError(f"{where}: missing field {key!r} (has {sorted(record)})")
        problem = _as_text(record[fields["problem"]], "problem", where)
        answer = _as_text(record[fields["answer"]], "answer", where)
        if pattern is not None:
            match = pattern.search(answer)
            if not match:
                raise DatasetError(f"{where}: answer does not match {pattern.pattern!r}")
            answer = _as_text(match.group(1).strip(), "answer", where)
        problem_id = (
            _as_text(record[fields["id"]], "id", where) if fields["id"] else f"{name}-{index:05d}"
        )
        if problem_id in seen:
            raise DatasetError(f"{where}: duplicate problem id {problem_id!r}")
        seen.add(problem_id)
        fixed = []
        for column, value in (("problem", problem), ("answer", answer)):
            if has_bad_control_characters(value):
                if on_control == "reject":  # collected: one error names every bad record
                    found = sorted(set(_MANGLED.findall(value) + _CONTROL.findall(value)))
                    rejected.append(f"{where}: {column} contains control characters {found!r}")
                if on_control == "repair":
                    repaired = repair_control_characters(value)
                    if repaired != value:
                        log.warning("%s: repaired lost LaTeX backslashes in %s (%s)", where, column, problem_id)
                    value = repaired
            fixed.append(value)
        row = {"problem_id": problem_id, "problem": fixed[0], "answer": fixed[1]}
        for key in metadata:
            row[key] = record.get(key)
        rows.append(row)
    if rejected:
        raise DatasetError(f"dataset {name!r}: {len(rejected)} records rejected "
                           "(control_characters: reject):\n" + "\n".join(rejected))
    if not rows:
        raise DatasetError(f"dataset {name!r} has no records")
    return pd.DataFrame(rows)


def _select(df: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    limit = spec.get("limit")
    if limit is None or limit >= len(df):
        return df.reset_index(drop=True)
    if spec.get("sample_seed") is not None:
        return df.sample(n=limit, random_state=spec["sample_seed"]).sort_index().reset_index(drop=True)
    return df.head(limit).reset_index(drop=True)


def load_problems(spec: dict[str, Any], name: str, base_dir: str | Path = ".") -> pd.DataFrame:
    """Load one dataset as described by its config entry ``datasets.<name>``."""
    loader = spec.get("loader")
    if loader == "synthetic":
        knobs = dict(spec.get("synthetic", {}))
        if "operations" in knobs:
            knobs["operations"] = tuple(knobs["operations"])
        difficulty = synthetic.Difficulty(**knobs)
        records = synthetic.generate(spec["n_problems"], spec.get("seed", 0), difficulty, prefix=name)
        return pd.DataFrame(records)
    if loader == "maze":
        from .mazes.datasets import maze_problems

        return maze_problems(spec["maze"], name)
    if loader == "jsonl":
        path = Path(base_dir, spec["path"])
        if not path.is_file():
            raise DatasetError(f"dataset {name!r}: no file at {path}")
        records = ((f"{path}:{lineno}", rec) for lineno, rec in _read_jsonl(path))
        return _select(normalize_records(records, spec, name), spec)
    if loader == "hub":
        try:
            import datasets as hf_datasets
        except ImportError as err:  # pragma: no cover - depends on the optional extra
            raise DatasetError("loader 'hub' needs the 'hub' extra: pip install -e '.[hub]'") from err
        hub = spec["hub"]
        table = hf_datasets.load_dataset(
            hub["name"], hub.get("config"), split=hub.get("split", "test"), revision=hub.get("revision")
        )
        records = ((f"{hub['name']}[{i}]", dict(rec)) for i, rec in enumerate(table))
        return _select(normalize_records(records, spec, name), spec)
    raise DatasetError(f"dataset {name!r}: unknown loader {loader!r} (synthetic | jsonl | hub | maze)")


def problems_job(spec: dict[str, Any], name: str, out: str, config: dict[str, Any]) -> None:
    from .provenance import provenance
    from .tables import write_table

    problems = load_problems(spec, name)
    seed = spec.get("seed") if spec.get("loader") == "synthetic" else spec.get("sample_seed")
    write_table(problems, out, provenance(config, dataset=name, spec=spec, n_problems=len(problems),
                                          **({"seed": seed} if seed is not None else {})))
    log.info("dataset %s: %d problems", name, len(problems))
