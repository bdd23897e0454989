# Helpers only: names, target lists, params. No rules here.
import re

from cot_potential.answer_locator import LOCATOR_VERSION
from cot_potential.grading import grader_version
from cot_potential.judge import PROMPT_VERSION as JUDGE_PROMPT_VERSION
from cot_potential.ids import slug, sub_seed
from cot_potential.models import model_spec, weights_dir
from cot_potential.plan import rollout_shards
from cot_potential.mazes import config as maze_config


MODEL_BY_SLUG = {slug(name): name for name in config["models"]}
IMPORTED = config["traces"]["imported"]
# Shards per rollout run (model slug or transfer run, dataset): planned tokens over
# rollouts.tokens_per_shard, from the config alone (the planner's function), so the jobs of a
# config never change once results exist.
try:
    SHARDS = rollout_shards(config)
except config_checks.ConfigError as err:  # a dataset the config cannot count: one paragraph
    raise WorkflowError(str(err)) from None
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


def model_grading(wildcards):
    """Grading settings of a run's answers: `grading`, with its model's own `grading` keys."""
    return {**config["grading"], **config["models"][model_name(wildcards)].get("grading", {})}


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
    """transfer.csv first (the report reads it), then the paired tests written beside it."""
    return ["results/tables/transfer.csv", "results/tables/transfer_paired.csv"] if TRANSFER_RUNS else []


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


def n_shards(wildcards):
    """The shard count of a rollout run (rollout_shards)."""
    return SHARDS[(wildcards.model, wildcards.dataset)]


def shard_files(kind):
    """Input function: every shard of a stage for the current model and dataset."""

    def files(wildcards):
        return [
            f"results/{kind}/{wildcards.model}/{wildcards.dataset}/shard-{i}.parquet"
            for i in range(n_shards(wildcards))
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
        return [f"results/prefixes/{wildcards.model}/{wildcards.dataset}/shard-{i}.parquet" for i in range(n_shards(wildcards))]
    return [f"results/prefixes/{wildcards.model}/{wildcards.dataset}.parquet"]


def adaptive_params(wildcards):
    """What the potentials of an adaptive run need to know about its stopping rule (else None)."""
    if is_adaptive(wildcards):
        return {"settings": config["rollouts"]["adaptive"], "n": config["rollouts"]["n"]}
    return None


def weights_inputs(wildcards):
    """The converted weights folder, if the workflow builds this model's weights (from a GGUF,
    or by training a maze run)."""
    weights = config["models"][model_name(wildcards)]["weights"]
    if maze_config.checkpoint_of_weights(config, weights):
        return [maze_config.checkpoint_of_weights(config, weights)]
    return [str(weights_dir(weights))] if weights in config["weights"] else []


def weights_spec(wildcards):
    return config["weights"][wildcards.weights]


def model_identity(wildcards):
    return spec(wildcards).identity()


def engine_gpus(wildcards):
    # A model behind a server (engine.backend: openai) needs no GPU in the job itself.
    if spec(wildcards).served_by:
        return 0
    return spec(wildcards).engine.get("tensor_parallel_size", 1)


def engine_threads(wildcards):
    return spec(wildcards).engine["threads"]


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


# ---------------------------------------------------------------- trace dynamics (issue 3)
DYNAMICS = config["dynamics"]
OPTIMIZE = config["optimize"]
# A potential-optimized run is a run of its own (`optimized.<model>`): its traces are built
# chunk by chunk by the optimize_cot rule, and their curves re-estimated on fresh rollouts.
OPTIMIZED_RUNS = {
    f"optimized.{slug(entry['model'])}": entry["model"]
    for entry in (OPTIMIZE["runs"] if OPTIMIZE["enabled"] else [])
}
CURVE_RUN = _alternatives([*MODEL_BY_SLUG, *OPTIMIZED_RUNS])


def optimized_runs():
    """(model slug, dataset) of every potential-optimized run."""
    runs = []
    for entry in OPTIMIZE["runs"] if OPTIMIZE["enabled"] else []:
        runs.extend((slug(entry["model"]), d) for d in entry["datasets"])
    return sorted(set(runs))


def curve_runs():
    """Every run with potential curves: (run, dataset), the optimized runs included."""
    return potential_runs() + [(f"optimized.{m}", d) for m, d in optimized_runs()]


def curve_run_labels():
    """For each curve run: the names the rates table shows, and the run's key."""
    labels = []
    for run, d in curve_runs():
        optimized = run in OPTIMIZED_RUNS
        model = OPTIMIZED_RUNS[run] if optimized else MODEL_BY_SLUG[run]
        labels.append({"model": model, "weights": config["models"][model]["weights"], "dataset": d,
                       "key": f"{run}/{d}", "trace_source": "optimized" if optimized else "sampled"})
    return labels


def curve_paths(run, dataset):
    """A curve run's potentials and traces (an optimized run's come from optimize_cot)."""
    if run in OPTIMIZED_RUNS:
        base = f"results/optimized/{run.removeprefix('optimized.')}/{dataset}"
        return {"potentials": f"{base}/potentials.parquet", "traces": f"{base}/traces.parquet"}
    return {"potentials": f"results/potentials/{run}/{dataset}.parquet",
            "traces": f"results/traces/{run}/{dataset}.parquet"}


def curve_inputs(wildcards):
    return curve_paths(wildcards.model, wildcards.dataset)


def curve_problems(wildcards):
    dataset = wildcards.dataset
    return f"results/problems/{problems_of(dataset)}.parquet"


def human_label_files():
    """Run key -> human label file (config dynamics.human_labels)."""
    return {f"{slug(e['model'])}/{e['dataset']}": e["path"] for e in DYNAMICS["human_labels"]}


def judge_label_files():
    """Run key -> the judge's labels, if a judge model is configured."""
    if not DYNAMICS["judge"]["model"]:
        return {}
    return {f"{run}/{d}": f"results/labels/{run}/{d}/judge.parquet" for run, d in curve_runs()}


def judge_card(wildcards):
    return f"results/models/{slug(DYNAMICS['judge']['model'])}/card.json"


def judge_gpus(wildcards):
    return model_spec(config, DYNAMICS["judge"]["model"]).engine.get("tensor_parallel_size", 1)


def judge_threads(wildcards):
    return model_spec(config, DYNAMICS["judge"]["model"]).engine["threads"]


def cut_grid():
    """The cut grid of the prefixes stage (for the rates table's protocol columns)."""
    return {k: config["prefixes"].get(k) for k in ("mode", "fractions", "stride", "max_cuts")}


def optimize_run(wildcards):
    """The optimize settings of one model and dataset."""
    return {k: v for k, v in OPTIMIZE.items() if k not in ("enabled", "runs")}


def dynamics_tables():
    tables = ["results/tables/dynamics.csv", "results/tables/power.csv"]
    if optimized_runs():
        tables.append("results/tables/optimized.csv")
    return tables


def dynamics_report_runs():
    """Per curve run: its labels and the paths the report's dynamics section reads."""
    runs = []
    for label, (run, d) in zip(curve_run_labels(), curve_runs()):
        paths = curve_paths(run, d)
        runs.append({**label, **paths, "events": f"results/events/{run}/{d}.parquet",
                     "dynamics": f"results/dynamics/{run}/{d}.parquet",
                     "figures": f"results/report/dynamics/{run}/{d}",
                     "annotations": f"results/annotations/{run}/{d}.csv"})
    return runs


def dynamics_report_files():
    """Every file the dynamics section of the report reads."""
    files = ["results/tables/dynamics.csv", "results/tables/power.csv", "results/report/dynamics/power.png"]
    if optimized_runs():
        files.append("results/tables/optimized.csv")
    for run in dynamics_report_runs():
        files.extend(run[k] for k in ("potentials", "traces", "events", "dynamics", "figures", "annotations"))
    return sorted(set(files))


def dynamics_report_params():
    """The dynamics section of the report: its tables, figures and runs."""
    return {"rates": "results/tables/dynamics.csv", "runs": dynamics_report_runs(),
            "power": "results/tables/power.csv", "power_figure": "results/report/dynamics/power.png",
            "optimized": "results/tables/optimized.csv" if optimized_runs() else None,
            "settings": DYNAMICS}


# ------------------------------------------------------------------ the maze experiment
MAZES = config["mazes"]
MAZE_RUNS = maze_config.runs(config)
MAZE_RUN = _alternatives(MAZE_RUNS)
MAZE_MAX_SIZE = maze_config.max_size(config)
# The optimisation settings of a training job; its thread count is the job's `threads:`.
MAZE_SCHEDULE = {k: v for k, v in MAZES["training"].items() if k != "threads"}
MAZE_GRPO_RUNS = maze_config.grpo_runs(config)
MAZE_GRPO_RUN = _alternatives(MAZE_GRPO_RUNS)
# The GRPO settings of a post-training job (the runs it applies to are its wildcard).
MAZE_GRPO = {k: v for k, v in MAZES["grpo"].items() if k != "runs"}
MAZE_GRPO_PAIRS = maze_config.grpo_pairs(config) if maze_config.enabled(config) else []


def maze_targets():
    """The targets of the maze experiment (when `experiments` lists mazes)."""
    if not maze_config.enabled(config):
        return []
    targets = [f"results/mazes/training/{run}.csv" for run in MAZE_RUNS]
    targets += [f"results/mazes/grpo/curves/{run}.csv" for run in MAZE_GRPO_RUNS]
    if MAZE_GRPO_PAIRS:
        targets.append("results/tables/maze_grpo.csv")
    if MAZES["evaluate"]["models"]:
        targets.append("results/tables/mazes.csv")
    if maze_config.potential_runs(config):
        targets.append("results/tables/maze_potentials.csv")
    return targets


def maze_test_problems():
    """Problem tables of every `loader: maze` dataset: the training draw avoids them."""
    return [f"results/problems/{d}.parquet" for d in maze_config.maze_datasets(config)]


def maze_run_data(wildcards):
    return f"results/mazes/data/{MAZE_RUNS[wildcards.run]['data']}.parquet"


def maze_run_seed(wildcards):
    return sub_seed(config["seed"], "maze-train", MAZE_RUNS[wildcards.run].get("seed", 0), wildcards.run)


def maze_grpo_seed(wildcards):
    return sub_seed(config["seed"], "maze-grpo", wildcards.run)


def maze_run_priority(wildcards):
    """Trace runs first: they are the long ones (3x the tokens), so on a 2-core machine the
    two of them train side by side and the short solution run comes after, instead of
    delaying one of them by its own length. The solution run still goes before the trace
    models' engine jobs (priority 0): with one-thread engines they then run beside it."""
    return 1 if MAZE_RUNS[wildcards.run]["data"] == "solution" else 2


def maze_evaluation_runs():
    """For each evaluated model and dataset: the labels of the evaluation table."""
    return [
        {"model": m, "run": maze_config.run_of_model(config, m),
         "data": MAZE_RUNS[maze_config.run_of_model(config, m)]["data"],
         "post_training": maze_config.post_training_of_model(config, m), "dataset": d}
        for m in MAZES["evaluate"]["models"] for d in MAZES["evaluate"]["datasets"]
    ]


def maze_potential_labels():
    return [
        {"model": m, "data": MAZE_RUNS[maze_config.run_of_model(config, m)]["data"],
         "post_training": maze_config.post_training_of_model(config, m), "dataset": d}
        for m, d in maze_config.potential_runs(config)
    ]


def maze_report_inputs():
    """The maze section's context for the report (empty unless the experiment is on)."""
    return ["results/mazes/report/context.json"] if maze_config.enabled(config) else []


def maze_report_sources():
    """Inputs of the maze section: evaluation items, curve shapes, training curves, problems."""
    sources = {"training": [f"results/mazes/training/{run}.csv" for run in MAZE_RUNS]}
    if MAZES["evaluate"]["models"]:
        sources["evaluation"] = "results/mazes/evaluation.parquet"
        sources["table"] = "results/tables/mazes.csv"
        sources["traces"] = [f"results/traces/{slug(r['model'])}/{r['dataset']}.parquet" for r in maze_evaluation_runs()]
        sources["problems"] = [f"results/problems/{r['dataset']}.parquet" for r in maze_evaluation_runs()]
    if maze_config.potential_runs(config):
        sources["curves"] = "results/tables/maze_potentials.csv"
        sources["shapes"] = "results/mazes/curve_shapes.parquet"
        sources["potentials"] = [f"results/potentials/{slug(m)}/{d}.parquet" for m, d in maze_config.potential_runs(config)]
    return sources
