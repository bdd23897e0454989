"""What the maze experiment reads from the config: runs, their checkpoints, the models that
use them, and the checks a schema cannot express.

A trained run ``<run>`` (``mazes.runs``) is saved at ``results/mazes/models/<run>``; a model
whose ``weights`` is that folder *is* a maze model, with everything else (prompt, sampling,
engine) an ordinary ``models:`` entry.
"""

from __future__ import annotations

import os
from typing import Any

CHECKPOINTS = "results/mazes/models"
# Head sizes the vLLM CPU attention backend implements (vllm 0.32, cpu_attn.py).
VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def checkpoint(run: str) -> str:
    return f"{CHECKPOINTS}/{run}"


def enabled(config: dict[str, Any]) -> bool:
    return "mazes" in config.get("experiments", [])


def runs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config.get("mazes", {}).get("runs", {})


def run_of_weights(config: dict[str, Any], weights: str) -> str | None:
    """The run whose checkpoint these weights are, if any."""
    by_path = {checkpoint(r): r for r in runs(config)}
    return by_path.get(os.path.normpath(weights))


def run_of_model(config: dict[str, Any], model: str) -> str | None:
    return run_of_weights(config, config["models"][model]["weights"])


def maze_datasets(config: dict[str, Any]) -> list[str]:
    return sorted(n for n, d in config.get("datasets", {}).items() if d.get("loader") == "maze")


def max_size(config: dict[str, Any]) -> int:
    """The largest grid of the training set and of every maze dataset (the tokenizer's range)."""
    sizes = list(config.get("mazes", {}).get("train", {}).get("sizes", [7]))
    for name in maze_datasets(config):
        sizes += config["datasets"][name]["maze"].get("sizes", [7])
    return max(sizes)


def potential_runs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(model, dataset)`` of every ``potentials:`` entry of a maze model on a maze dataset."""
    mazes = set(maze_datasets(config))
    return sorted({(e["model"], d) for e in config.get("potentials", []) for d in e["datasets"]
                   if run_of_model(config, e["model"]) and d in mazes})


def check(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first inconsistent key of the maze experiment."""
    datasets, models = config.get("datasets", {}), config.get("models", {})
    for name in maze_datasets(config):
        if datasets[name].get("grader", "math") != "maze_plan":
            raise ValueError(f"datasets.{name}: loader 'maze' needs grader: maze_plan")
    for name, entry in models.items():
        weights = entry["weights"]
        if weights.startswith(CHECKPOINTS) and run_of_weights(config, weights) is None:
            raise ValueError(f"models.{name}.weights: {weights!r} is not the checkpoint of a run in "
                             f"mazes.runs (known: {sorted(checkpoint(r) for r in runs(config))})")
        if run_of_weights(config, weights) is not None:
            prompt = config["prompts"][entry["prompt"]]
            if prompt.get("template", "chat") != "raw":
                raise ValueError(f"models.{name}: a maze model needs a prompt with template: raw "
                                 f"({entry['prompt']!r} renders a chat template the model has not got)")
    if not enabled(config):
        return
    mazes = config["mazes"]
    model = mazes.get("model", {})
    hidden, heads = model.get("hidden_size", 128), model.get("heads", 4)
    if model.get("head_dim") is not None:
        if model["head_dim"] not in VLLM_CPU_HEAD_SIZES:
            raise ValueError(f"mazes.model: head_dim {model['head_dim']} must be one of the head sizes "
                             f"vLLM-CPU supports {VLLM_CPU_HEAD_SIZES}")
    elif hidden % heads or hidden // heads not in VLLM_CPU_HEAD_SIZES:
        raise ValueError(f"mazes.model: hidden_size / heads = {hidden} / {heads} must be one of the "
                         f"head sizes vLLM-CPU supports {VLLM_CPU_HEAD_SIZES} (or set head_dim)")
    if not runs(config):
        raise ValueError("mazes.runs: experiments lists mazes but no run is configured")
    evaluate = mazes.get("evaluate", {})
    for name in evaluate.get("models", []):
        if name not in models:
            raise ValueError(f"mazes.evaluate.models: unknown model {name!r}; known: {sorted(models)}")
        if run_of_model(config, name) is None:
            raise ValueError(f"mazes.evaluate.models: {name!r} does not use a maze run's weights")
    for name in evaluate.get("datasets", []):
        if name not in maze_datasets(config):
            raise ValueError(f"mazes.evaluate.datasets: {name!r} is not a dataset with loader: maze "
                             f"(known: {maze_datasets(config)})")
