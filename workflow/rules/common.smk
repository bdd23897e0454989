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
# A transfer pair is a run of its own: its prefixes come from another model's traces and its
# target continues them; rollouts, grading and potentials are the same rules.
TRANSFER = config["transfer"]
TRANSFER_RUNS = {f"transfer.{slug(pair['name'])}": pair for pair in TRANSFER.get("pairs", [])}


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    model="[a-z0-9][a-z0-9._-]*",
    dataset="[A-Za-z0-9][A-Za-z0-9_-]*",
    shard=r"\d+",


GENERATED_DATASET = _alternatives(config["datasets"])
IMPORTED_SET = _alternatives(IMPORTED)
MODEL_RUN = _alternatives(MODEL_BY_SLUG)
TRANSFER_RUN = _alternatives(TRANSFER_RUNS)
# rollouts.sampling: adaptive applies to potential runs; transfer runs keep their fixed design
# (the alone and floor batches at f = 0 are defined by their sample counts).
ADAPTIVE = config["rollouts"]["sampling"] == "adaptive"
ADAPTIVE_RUN = MODEL_RUN if ADAPTIVE else "(?!)"


def model_name(wildcards):
    """The model that writes a run's completions (a transfer run's target)."""
    if wildcards.model in TRANSFER_RUNS:
        return TRANSFER_RUNS[wildcards.model]["target"]
    return MODEL_BY_SLUG[wildcards.model]


def card_path(wildcards):
    return f"results/models/{slug(model_name(wildcards))}/card.json"


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


def transfer_runs():
    return sorted((run, d) for run, pair in TRANSFER_RUNS.items() for d in pair["datasets"])


def transfer_run_labels():
    """For each transfer run and dataset: the names the tables and the report show."""
    return [
        {"source": TRANSFER_RUNS[run]["source"], "target": TRANSFER_RUNS[run]["target"], "dataset": d}
        for run, d in transfer_runs()
    ]


def transfer_tables():
    return ["results/tables/transfer.csv"] if TRANSFER_RUNS else []


def transfer_pair(wildcards):
    return TRANSFER_RUNS[wildcards.model]


def transfer_inputs(wildcards):
    """Problems, the target's card, the source's traces (and card) unless it is an imported
    text set, and the target's own traces for the `own` control."""
    pair = TRANSFER_RUNS[wildcards.model]
    target = slug(pair["target"])
    inputs = {
        "problems": f"results/problems/{wildcards.dataset}.parquet",
        "target_card": f"results/models/{target}/card.json",
    }
    if pair["source"] not in IMPORTED:
        source = slug(pair["source"])
        inputs["source_traces"] = f"results/traces/{source}/{wildcards.dataset}.parquet"
        inputs["source_card"] = f"results/models/{source}/card.json"
    if "own" in TRANSFER["conditions"]:
        inputs["own_traces"] = f"results/traces/{target}/{wildcards.dataset}.parquet"
    return inputs


def transfer_imported_spec(wildcards):
    return IMPORTED.get(TRANSFER_RUNS[wildcards.model]["source"])


def transfer_n(wildcards):
    return TRANSFER["n"] or config["rollouts"]["n"]


def shard_files(kind):
    """Input function: every shard of a stage for the current model and dataset."""

    def files(wildcards):
        return [
            f"results/{kind}/{wildcards.model}/{wildcards.dataset}/shard-{i}.parquet"
            for i in range(N_SHARDS)
        ]

    return files


def sample_store(wildcards):
    """Every sample drawn for a run, kept across jobs so raising N or adding cuts draws only
    what is missing (sample_store.py). Not an output: Snakemake deletes outputs before a rerun."""
    return f"results/samples/{wildcards.model}/{wildcards.dataset}"


def is_adaptive(wildcards):
    return ADAPTIVE and wildcards.model in MODEL_BY_SLUG


def shard_prefix_table(wildcards):
    """The prefixes a shard's completions continue: an adaptive job writes its own cuts."""
    if is_adaptive(wildcards):
        return f"results/prefixes/{wildcards.model}/{wildcards.dataset}/shard-{wildcards.shard}.parquet"
    return f"results/prefixes/{wildcards.model}/{wildcards.dataset}.parquet"


def run_prefix_tables(wildcards):
    """All prefixes of a run: the prefix table, or every adaptive shard's own."""
    if is_adaptive(wildcards):
        return [f"results/prefixes/{wildcards.model}/{wildcards.dataset}/shard-{i}.parquet" for i in range(N_SHARDS)]
    return [f"results/prefixes/{wildcards.model}/{wildcards.dataset}.parquet"]


def adaptive_params(wildcards):
    """What the potentials of an adaptive run need to know about its stopping rule (else None)."""
    if is_adaptive(wildcards):
        return {"settings": config["rollouts"]["adaptive"], "n": config["rollouts"]["n"]}
    return None


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
