# Helpers only: names, target lists, params. No rules here.
import re

from cot_potential import config as config_checks
from cot_potential.grading import grader_version
from cot_potential.ids import slug, sub_seed
from cot_potential.models import model_spec, weights_dir

config_checks.check(config)

MODEL_BY_SLUG = {slug(name): name for name in config["models"]}
IMPORTED = config["traces"]["imported"]
N_SHARDS = config["rollouts"]["shards"]


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    model="[a-z0-9][a-z0-9._-]*",
    dataset="[A-Za-z0-9][A-Za-z0-9_-]*",
    shard=r"\d+",


GENERATED_DATASET = _alternatives(config["datasets"])
IMPORTED_SET = _alternatives(IMPORTED)


def model_name(wildcards):
    return MODEL_BY_SLUG[wildcards.model]


def spec(wildcards):
    return model_spec(config, model_name(wildcards))


def problems_of(name):
    """The dataset whose problems a dataset or imported trace set name refers to."""
    return IMPORTED[name]["dataset"] if name in IMPORTED else name


def problems_table(wildcards):
    return f"results/problems/{problems_of(wildcards.dataset)}.parquet"


def potential_runs():
    runs = []
    for entry in config["potentials"]:
        for dataset in entry["datasets"]:
            runs.append((slug(entry["model"]), dataset))
    return sorted(set(runs))


def potential_tables():
    return [f"results/potentials/{m}/{d}.parquet" for m, d in potential_runs()]


def shard_files(kind):
    """Input function: every shard of a stage for the current model and dataset."""

    def files(wildcards):
        return [
            f"results/{kind}/{wildcards.model}/{wildcards.dataset}/shard-{i}.parquet"
            for i in range(N_SHARDS)
        ]

    return files


def weights_inputs(wildcards):
    """The converted weights folder, if the workflow builds this model's weights."""
    weights = config["models"][model_name(wildcards)]["weights"]
    return [str(weights_dir(weights))] if weights in config["weights"] else []


def weights_spec(wildcards):
    return config["weights"][wildcards.weights]


def model_identity(wildcards):
    return spec(wildcards).identity()


def engine_gpus(wildcards):
    return spec(wildcards).engine.get("tensor_parallel_size", 1)


def job_seed(stage):
    def seed(wildcards):
        return sub_seed(config["seed"], stage, dict(wildcards.items()))

    return seed


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def imported_spec(wildcards):
    return IMPORTED[wildcards.dataset]


def dataset_grader(wildcards):
    """The grader of a dataset (or of an imported trace set's dataset): math | maze_plan."""
    return config["datasets"][problems_of(wildcards.dataset)].get("grader", "math")


def current_grader_version(wildcards):
    return grader_version(dataset_grader(wildcards))
