"""The maze experiment's config: shipped configs, defaults that change nothing, clear errors."""

from __future__ import annotations

import copy

import pytest

from conftest import load_config
from cot_potential.config import ConfigError, validate
from cot_potential.mazes import config as maze_config
from test_config import mutate

SHIPPED = ("config/mazes.yaml", "tests/config/mazes-tiny.yaml", "config/paper.yaml")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_maze_configs_are_valid(name):
    config = validate(load_config(name))
    assert maze_config.enabled(config) and maze_config.runs(config)


def test_the_default_config_does_not_run_the_maze_experiment():
    config = validate(load_config())
    assert config["experiments"] == [] and not maze_config.enabled(config)
    assert not maze_config.runs(config) and maze_config.potential_runs(config) == []


def test_maze_runs_models_and_sizes():
    config = validate(load_config("config/mazes.yaml"))
    assert maze_config.run_of_model(config, "maze-correct-sampled") == "correct"
    assert maze_config.run_of_weights(config, "./results/mazes/models/swapped") == "swapped"
    assert maze_config.run_of_weights(config, "HuggingFaceTB/SmolLM2") is None
    assert maze_config.max_size(config) == 5
    assert [d for _, d in maze_config.potential_runs(config)] == ["maze-potential", "maze-potential"]


WRONG = [
    (("datasets", "maze-test", "grader"), "math", "loader 'maze' needs grader: maze_plan"),
    (("datasets", "maze-test", "maze", "generators"), ["prim"], "is not one of"),
    (("models", "maze-correct", "weights"), "results/mazes/models/corect", "not the checkpoint of a run"),
    (("prompts", "maze-query", "template"), "chat", "needs a prompt with template: raw"),
    (("mazes", "model", "head_dim"), 16, "head_dim 16 must be one of the head sizes vLLM-CPU supports"),
    (("mazes", "model"), {"hidden_size": 64, "heads": 4}, r"64 / 4 must be one of .* \(or set head_dim\)"),
    (("mazes", "runs"), {}, "mazes.grpo.runs: .correct. is not a run of mazes.runs"),
    (("mazes", "grpo", "runs"), ["correct"], "not the checkpoint of a run in mazes.runs or mazes.grpo.runs"),
    (("mazes", "evaluate", "models"), ["maze-corect"], "unknown model 'maze-corect'"),
    (("mazes", "evaluate", "datasets"), ["arith"], "not a dataset with loader: maze"),
    (("mazes", "grpo"), {"runs": ["corect"]}, "mazes.grpo.runs: 'corect' is not a run of mazes.runs"),
    (("mazes", "grpo"), {"aggregate": "mean"}, "is not one of"),
    (("mazes", "runs", "correct", "data"), "shuffled", "is not one of"),
    (("mazes", "training", "lr"), 0, "exclusiveMinimum"),
    (("experiments",), ["maze"], "is not one of"),
]


@pytest.mark.parametrize(("path", "value", "message"), WRONG, ids=[".".join(map(str, w[0])) for w in WRONG])
def test_wrong_maze_configs_are_rejected_naming_the_problem(path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate(mutate(load_config("config/mazes.yaml"), path, value))


def test_a_non_maze_model_cannot_be_evaluated():
    config = copy.deepcopy(load_config("config/mazes.yaml"))
    config["models"]["other"] = {"weights": "some/hub-model", "prompt": "maze-query", "sampling": {"max_tokens": 8}}
    config["mazes"]["evaluate"]["models"] = ["other"]
    with pytest.raises(ConfigError, match="does not use a maze run's weights"):
        validate(config)


def test_the_maze_experiment_needs_runs():
    with pytest.raises(ConfigError, match="no run is configured"):
        validate({**load_config(), "experiments": ["mazes"]})


def test_grpo_models_are_maze_models_of_their_run_paired_with_their_start():
    config = validate(load_config("tests/config/mazes-tiny.yaml"))
    assert maze_config.run_of_model(config, "maze-correct-grpo") == "correct"
    assert maze_config.post_training_of_model(config, "maze-correct-grpo") == "grpo"
    assert maze_config.post_training_of_model(config, "maze-correct") == "none"
    assert maze_config.checkpoint_of_weights(config, "results/mazes/grpo/models/correct/") == \
        "results/mazes/grpo/models/correct"
    assert maze_config.grpo_pairs(config) == [("maze-correct", "maze-correct-grpo")]


def test_an_evaluated_grpo_model_needs_its_start_evaluated_with_the_same_sampling():
    config = copy.deepcopy(load_config("tests/config/mazes-tiny.yaml"))
    config["models"]["maze-correct-grpo"]["sampling"] = {"temperature": 0.0, "max_tokens": 256}
    with pytest.raises(ConfigError, match="no evaluated model has its starting weights"):
        validate(config)


def test_grpo_is_off_unless_runs_are_listed():
    config = validate(load_config())
    assert maze_config.grpo_runs(config) == [] and config["mazes"]["grpo"]["steps"] >= 1
    shipped = validate(load_config("config/mazes.yaml"))
    assert maze_config.grpo_runs(shipped) == ["correct", "swapped"]
    assert ("maze-correct", "maze-correct-grpo") in maze_config.grpo_pairs(shipped)
