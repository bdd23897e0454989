"""Checks of the config that a JSON schema cannot express: names that refer to each other.

The schema (``workflow/schemas/config.schema.yaml``) checks types, ranges and unknown keys;
this checks that every model, prompt, dataset and trace set named somewhere exists, so a
misspelt name fails before any job starts, naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from .ids import slug

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def _did_you_mean(name: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _require(name: str, options: dict | list, where: str, what: str) -> None:
    if name not in options:
        known = sorted(options)
        raise ConfigError(f"{where}: unknown {what} {name!r}{_did_you_mean(name, known)}; known: {known}")


def _check_weights(weights: str, built: dict[str, Any], where: str) -> None:
    """Weights are a name under ``weights:``, a local folder, or a hub id (``org/name``):
    a bare name that is none of these is a typo, caught before any job runs."""
    if weights in built or "/" in weights or Path(weights).exists():
        return
    raise ConfigError(f"{where}: {weights!r} is not a name under `weights`{_did_you_mean(weights, list(built))}, "
                      f"a local folder, or a hub id (org/name); names under `weights`: {sorted(built)}")


def _check_jsonl(path: str, where: str, fields: dict[str, str]) -> None:
    """The file exists and its first record has the mapped fields (a misspelt field name
    fails now, not in a job after the weights were built)."""
    import json

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{where}.path: no file at {file.resolve()}")
    with file.open("rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        record = json.loads(first)
    except ValueError as err:
        raise ConfigError(f"{where}.path: the first record of {file} is not valid JSON ({err})") from err
    if not isinstance(record, dict):
        raise ConfigError(f"{where}.path: the first record of {file} is not a JSON object")
    for key, field in fields.items():
        if field not in record:
            raise ConfigError(f"{where}.{key}: field {field!r} is not in the records of {file}"
                              f"{_did_you_mean(field, list(record))}; fields: {sorted(record)}")


def check(config: dict[str, Any]) -> None:
    """Raise ``ConfigError`` naming the first key that refers to something undefined."""
    models, prompts = config.get("models", {}), config.get("prompts", {})
    datasets = config.get("datasets", {})
    imported = config.get("traces", {}).get("imported", {})
    slugs: dict[str, str] = {}
    for name, entry in models.items():
        _require(entry["prompt"], prompts, f"models.{name}.prompt", "prompt")
        _check_weights(entry["weights"], config.get("weights", {}), f"models.{name}.weights")
        other = slugs.setdefault(slug(name), name)
        if other != name:
            raise ConfigError(f"models {other!r} and {name!r} have the same file name slug {slug(name)!r}")
    clash = set(datasets) & set(imported)
    if clash:
        raise ConfigError(f"traces.imported: names {sorted(clash)} are also dataset names")
    for name, entry in datasets.items():
        loader = entry["loader"]
        required = {"synthetic": ["n_problems"], "jsonl": ["path"], "hub": ["hub"], "maze": ["maze"]}[loader]
        for key in required:
            if key not in entry:
                raise ConfigError(f"datasets.{name}: loader {loader!r} needs the key {key!r}")
        if loader == "jsonl":
            fields = {"id": None, "problem": "problem", "answer": "answer", **entry.get("fields", {})}
            _check_jsonl(entry["path"], f"datasets.{name}", {f"fields.{k}": v for k, v in fields.items() if v})
    for name, entry in imported.items():
        _require(entry["dataset"], datasets, f"traces.imported.{name}.dataset", "dataset")
        if ("field" in entry) == ("path" in entry):
            raise ConfigError(f"traces.imported.{name}: give exactly one of 'field' or 'path'")
        if "path" in entry:
            fields = {"problem_id": "problem_id", "text": "text", **entry.get("fields", {})}
            _check_jsonl(entry["path"], f"traces.imported.{name}", {f"fields.{k}": v for k, v in fields.items()})
        if "field" in entry and entry["field"] not in datasets[entry["dataset"]].get("metadata", []):
            raise ConfigError(
                f"traces.imported.{name}.field: {entry['field']!r} is not listed in "
                f"datasets.{entry['dataset']}.metadata"
            )
    seen_pairs: set[str] = set()
    for i, pair in enumerate(config.get("transfer", {}).get("pairs", [])):
        where = f"transfer.pairs[{i}]"
        if pair["name"] in seen_pairs:
            raise ConfigError(f"{where}.name: {pair['name']!r} is used twice")
        seen_pairs.add(pair["name"])
        _require(pair["source"], {**models, **imported}, f"{where}.source", "model or trace set")
        _require(pair["target"], models, f"{where}.target", "model")
        for name in pair["datasets"]:
            _require(name, datasets, f"{where}.datasets", "dataset")
        if pair["source"] in imported and pair["datasets"] != [imported[pair["source"]]["dataset"]]:
            raise ConfigError(f"{where}.datasets: the imported trace set {pair['source']!r} only covers "
                              f"[{imported[pair['source']]['dataset']!r}]")
        target = models[pair["target"]]
        if target.get("placement") == "think" and not target.get("thinking", False):
            raise ConfigError(f"models.{pair['target']}.placement: 'think' needs a thinking model")
        _check_transfer_fits(config, pair, where)
    for i, entry in enumerate(config.get("potentials", [])):
        _require(entry["model"], models, f"potentials[{i}].model", "model")
        for name in entry["datasets"]:
            _require(name, {**datasets, **imported}, f"potentials[{i}].datasets", "dataset or trace set")
    _check_dynamics(config, models)
    _check_mazes(config)


def transfer_lengths(config: dict[str, Any], pair: dict[str, Any]) -> dict[str, int | None]:
    """The planned token lengths of one transfer pair's longest rollout.

    ``prefix``: the largest fraction times the source's L_max (counted as target tokens:
    the paper's pairs share a tokenizer; None for an imported text source, whose length is
    known only when its texts load). ``budget``: new tokens after the prefix. ``context``:
    the target's ``max_model_len``, or its ``native_context`` where that is null (None if
    neither is set). The config check and the planner both use these.
    """
    models = config["models"]
    target = models[pair["target"]]
    engine = {**config.get("engine", {}), **target.get("engine", {})}
    source = models.get(pair["source"])
    budget = pair.get("budget") or target["sampling"]["max_tokens"]
    prefix = math.ceil(max(pair["fractions"]) * source["sampling"]["max_tokens"]) if source else None
    return {"prompt": config.get("transfer", {}).get("prompt_tokens", 512), "prefix": prefix, "budget": budget,
            "context": engine.get("max_model_len") or target.get("native_context"),
            "max_model_len": engine.get("max_model_len"), "native": target.get("native_context")}


def _check_transfer_fits(config: dict[str, Any], pair: dict[str, Any], where: str) -> None:
    """Prompt + the longest placed prefix + the budget fit the target's context, or one
    paragraph says which pair, dataset and lengths do not (before any engine starts)."""
    n = transfer_lengths(config, pair)
    head = (f"{where} ({pair['name']}: {pair['source']} -> {pair['target']}, "
            f"datasets {', '.join(pair['datasets'])})")
    if n["max_model_len"] and n["native"] and n["max_model_len"] > n["native"]:
        raise ConfigError(f"{head}: the target's max_model_len {n['max_model_len']:,} exceeds its native "
                          f"context of {n['native']:,} tokens (models.{pair['target']}.native_context).")
    if n["context"] is None:
        raise ConfigError(f"{head}: the target's context length is unknown before its engine starts, so "
                          f"prompt + placed prefix + budget cannot be checked; set "
                          f"models.{pair['target']}.engine.max_model_len or models.{pair['target']}.native_context.")
    if n["prefix"] is None:
        return  # an imported text source: the prefix job measures it and records any cut budget
    need = n["prompt"] + n["prefix"] + n["budget"]
    native = f" (native {n['native']:,})" if n["native"] else ""
    if need > n["context"]:
        raise ConfigError(
            f"{head}: the longest placed prefix does not leave the target its budget. "
            f"Prompt ~{n['prompt']:,} (transfer.prompt_tokens) + prefix {n['prefix']:,} "
            f"({max(pair['fractions']):g} x the source's L_max {config['models'][pair['source']]['sampling']['max_tokens']:,}) "
            f"+ budget {n['budget']:,} = {need:,} tokens, but the target's context is {n['context']:,}"
            f"{native}. "
            f"Lower the pair's budget to <= {max(0, n['context'] - n['prompt'] - n['prefix']):,}, its largest "
            f"fraction, or raise models.{pair['target']}.engine.max_model_len (up to its native length).")


def _check_dynamics(config: dict[str, Any], models: dict[str, Any]) -> None:
    """The dynamics and optimize keys name models and runs that exist."""
    runs = {(entry["model"], d) for entry in config.get("potentials", []) for d in entry["datasets"]}
    run_names = sorted(f"{m}/{d}" for m, d in runs)
    dynamics = config.get("dynamics", {})
    judge = dynamics.get("judge", {}).get("model")
    if judge is not None:
        _require(judge, models, "dynamics.judge.model", "model")
    for i, entry in enumerate(dynamics.get("human_labels", [])):
        name = f"{entry['model']}/{entry['dataset']}"
        _require(name, run_names, f"dynamics.human_labels[{i}]", "model/dataset run (under `potentials`)")
    optimize = config.get("optimize", {})
    for i, entry in enumerate(optimize.get("runs", []) if optimize.get("enabled") else []):
        _require(entry["model"], models, f"optimize.runs[{i}].model", "model")
        for name in entry["datasets"]:
            _require(f"{entry['model']}/{name}", run_names, f"optimize.runs[{i}].datasets",
                     "model/dataset run (under `potentials`: the ordinary baseline)")


def _check_mazes(config: dict[str, Any]) -> None:
    """The maze experiment: its datasets grade plans, its models name trained runs."""
    from .mazes.config import check

    try:
        check(config)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and validate (schema, then cross-references), as the Snakefile does."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as schema_validate

    try:
        schema_validate(config, str(SCHEMA), set_default=True)
    except WorkflowError as err:
        raise ConfigError(schema_error(config) or str(err)) from None
    check(config)
    return config


def schema_error(config: dict[str, Any]) -> str | None:
    """The most relevant schema violation as a short paragraph: the key and its value, what
    is wrong, what is allowed there and, for a misspelt key or choice, the nearest valid one,
    e.g. ``config key rollouts.n: 0 is less than the minimum of 1 (minimum)`` then
    ``  allowed: an integer >= 1 (Samples per prefix ...)``. None if the config is valid."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = yaml.safe_load(SCHEMA.read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        return _unknown_key_error(path, error.instance, error.schema)
    allowed = _allowed(error.schema)
    if error.validator == "required":
        allowed = f"the keys {', '.join(error.schema['required'])}, and any of {', '.join(error.schema.get('properties', {}))}"
    lines = [f"config key {_key_name(path)}: {_short(error.message, 160)} ({error.validator})",
             f"  allowed: {_short(allowed, 300)}"]
    choices = error.schema.get("enum")
    if choices and isinstance(error.instance, str):
        lines.append(f"  {_did_you_mean(error.instance, [str(c) for c in choices]).strip(' ()')}".rstrip())
    return "\n".join(line for line in lines if line.strip()) + "\n" + SCHEMA_HINT


SCHEMA_HINT = "  every key, its type, range and default: workflow/schemas/config.schema.yaml (config/README.md)"


def _unknown_key_error(path: list, instance: dict, node: dict) -> str:
    known = sorted(node.get("properties", {}))
    unknown = sorted(str(k) for k in instance if k not in known)
    name = unknown[0]
    where = f"under {_key_name(path)}" if path else "at the top level"
    lines = [f"config key {_key_name([*path, name])}: unknown key {where} (value {_short(repr(instance[name]), 60)})",
             f"  allowed {where}: {_short(', '.join(known), 300)}"]
    guess = _did_you_mean(name, known).strip(" ()")
    if guess:
        lines.append(f"  {guess}")
    return "\n".join(lines) + "\n" + SCHEMA_HINT


def _key_name(path: list) -> str:
    """``['potentials', 0, 'model']`` -> ``potentials[0].model``."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "(top level)"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}


def _allowed(node: dict) -> str:
    """What a schema node accepts, in words, with the first sentence of its description."""
    if "enum" in node:
        what = "one of " + ", ".join(map(str, node["enum"]))
    else:
        kinds = node.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        what = " or ".join(_TYPE_NAMES.get(k, k) for k in kinds) or "see the schema"
        bounds = [f"{sign} {node[key]}" for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                         ("maximum", "<="), ("exclusiveMaximum", "<"))
                  if key in node]
        if bounds:
            what += " " + " and ".join(bounds)
        if "pattern" in node:
            what += f" matching {node['pattern']}"
    description = node.get("description", "").strip()
    if description:
        what += f" ({_short(description.split('. ')[0].rstrip('.'), 120)})"
    return what


def load(path: str | Path) -> dict[str, Any]:
    """Load a config file and validate it."""
    return validate(yaml.safe_load(Path(path).read_text()))
