import copy

import pytest

from conftest import REPO, load_config
from cot_potential.config import ConfigError, validate


@pytest.fixture
def default():
    return load_config()


def test_shipped_configs_are_valid():
    for name in ("config/config.yaml", "tests/config/tiny.yaml"):
        validate(load_config(name))


def mutate(config, path, value):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


WRONG = [
    (("rollouts", "n"), 0, "minimum"),
    (("rollouts", "n"), "many", "is not of type"),
    (("rollouts", "samples"), 4, "Additional properties"),
    (("models", "smollm2-oneshot", "sampling", "temprature"), 0.7, "temprature"),
    (("models", "smollm2-oneshot", "sampling", "top_p"), 1.5, "maximum"),
    (("models", "smollm2-oneshot", "prompt"), "boxed-oneshoot", "unknown prompt 'boxed-oneshoot'"),
    (("models", "smollm2-oneshot", "weigths"), "x", "weigths"),
    (("datasets", "arith", "loader"), "csv", "is not one of"),
    (("datasets", "arith", "n_problems"), KeyError, "needs the key 'n_problems'"),
    (("datasets", "bad name"), {"loader": "synthetic", "n_problems": 3}, "does not match"),
    (("potentials", 0, "model"), "smollm2-oneshto", "did you mean 'smollm2-oneshot'"),
    (("potentials", 0, "datasets"), ["aritm"], "unknown dataset or trace set 'aritm'"),
    (("prefixes", "fractions"), [0.0, 1.2], "maximum"),
    (("grading", "timeout_s"), 0, "exclusiveMinimum"),
    (("engine", "cpu_kvcache"), 4, "cpu_kvcache"),
    (("prompts", "boxed-oneshot", "user"), "no placeholder", "does not match"),
]


@pytest.mark.parametrize(("path", "value", "message"), WRONG, ids=[".".join(map(str, w[0])) for w in WRONG])
def test_wrong_configs_are_rejected_naming_the_problem(default, path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate(mutate(default, path, value))


def test_unknown_top_level_key(default):
    with pytest.raises(ConfigError, match="rolouts"):
        validate({**default, "rolouts": {"n": 4}})
