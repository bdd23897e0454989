"""What the maze experiment reads from the config: runs, their checkpoints, the models that
use them, and the checks a schema cannot express.

A trained run ``<run>`` (``mazes.runs``) is saved at ``results/mazes/models/<run>``; a model
whose ``weights`` is that folder *is* a maze model, with everything else (prompt, sampling,
engine) an ordinary ``models:`` entry. A run post-trained with GRPO (``mazes.grpo.runs``) is
saved at ``results/mazes/grpo/models/<run>``, and a model with those weights is a maze model
of the same run, ``post_training: grpo``.
"""

from __future__ import annotations

import os
from typing import Any

CHECKPOINTS = "results/mazes/models"
GRPO_CHECKPOINTS = "results/mazes/grpo/models"
# Head sizes the vLLM CPU attention backend implements (vllm 0.32, cpu_attn.py).
VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def checkpoint(run: str) -> str:
    return f"{CHECKPOINTS}/{run}"


def grpo_checkpoint(run: str) -> str:
    return f"{GRPO_CHECKPOINTS}/{run}"


def enabled(config: dict[str, Any]) -> bool:
    return "mazes" in config.get("experiments", [])


def runs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config.get("mazes", {}).get("runs", {})


def grpo_runs(config: dict[str, Any]) -> list[str]:
    return list(config.get("mazes", {}).get("grpo", {}).get("runs", []))


def checkpoints(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every checkpoint the experiment writes: path -> (run, post-training: none | grpo)."""
    out = {checkpoint(r): (r, "none") for r in runs(config)}
    out.update({grpo_checkpoint(r): (r, "grpo") for r in grpo_runs(config)})
    return out


def run_of_weights(config: dict[str, Any], weights: str) -> str | None:
    """The run whose checkpoint (trained, or post-trained with GRPO) these weights are, if any."""
    return checkpoints(config).get(os.path.normpath(weights), (None, None))[0]


def checkpoint_of_weights(config: dict[str, Any], weights: str) -> str | None:
    """The experiment's checkpoint folder these weights are (the job that writes it), if any."""
    path = os.path.normpath(weights)
    return path if path in checkpoints(config) else None


def run_of_model(config: dict[str, Any], model: str) -> str | None:
    return run_of_weights(config, config["models"][model]["weights"])


def post_training_of_model(config: dict[str, Any], model: str) -> str:
    """``grpo`` for a model whose weights are a GRPO checkpoint, else ``none``."""
    return checkpoints(config).get(os.path.normpath(config["models"][model]["weights"]), (None, "none"))[1]


def grpo_pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(before, after)`` of every evaluated GRPO model: the evaluated model of the same run
    before GRPO with the same prompt and sampling (the paired comparison's two sides)."""
    models, evaluated = config["models"], config.get("mazes", {}).get("evaluate", {}).get("models", [])
    pairs = []
    for after in evaluated:
        if post_training_of_model(config, after) != "grpo":
            continue
        start = checkpoint(run_of_model(config, after))
        same = [m for m in evaluated if os.path.normpath(models[m]["weights"]) == start
                and models[m]["prompt"] == models[after]["prompt"]
                and models[m].get("sampling") == models[after].get("sampling")]
        if not same:
            raise ValueError(f"mazes.evaluate.models: {after!r} is post-trained with GRPO, but no evaluated "
                             f"model has its starting weights {start} with the same prompt and sampling "
                             "(the before/after comparison needs both)")
        pairs.append((same[0], after))
    return pairs


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
    for run in grpo_runs(config):
        if run not in runs(config):
            raise ValueError(f"mazes.grpo.runs: {run!r} is not a run of mazes.runs ({sorted(runs(config))})")
    for name, entry in models.items():
        weights = entry["weights"]
        if weights.startswith((CHECKPOINTS, GRPO_CHECKPOINTS)) and run_of_weights(config, weights) is None:
            raise ValueError(f"models.{name}.weights: {weights!r} is not the checkpoint of a run in "
                             f"mazes.runs or mazes.grpo.runs (known: {sorted(checkpoints(config))})")
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
    grpo_pairs(config)
