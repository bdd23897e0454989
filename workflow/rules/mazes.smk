# The maze experiment (experiments: [mazes]): tokenizer, training data, training from scratch,
# evaluation of plans and traces, and the comparison of the maze models' potential curves.
# Test problems are `loader: maze` datasets and the trained models ordinary `models:` entries,
# so traces, prefixes, rollouts, grading and potentials are the pipeline's own rules.


rule maze_tokenizer:
    output:
        directory("results/mazes/tokenizer"),
    params:
        max_size=MAZE_MAX_SIZE,
        max_length=MAZES["model"]["max_length"],
    log:
        "logs/maze_tokenizer/maze_tokenizer.log",
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_tokenizer.py"


rule maze_training_data:
    input:
        maze_test_problems(),
    output:
        mazes="results/mazes/data/mazes.parquet",
        validation="results/mazes/data/validation.parquet",
        solution="results/mazes/data/solution.parquet",
        correct="results/mazes/data/correct.parquet",
        swapped="results/mazes/data/swapped.parquet",
    params:
        spec=MAZES["train"],
        eval_mazes=MAZES["training"]["eval_mazes"],
    log:
        "logs/maze_training_data/maze_training_data.log",
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_training_data.py"


rule maze_train:
    input:
        sequences=maze_run_data,
        validation="results/mazes/data/validation.parquet",
        tokenizer="results/mazes/tokenizer",
    output:
        model=directory("results/mazes/models/{run}"),
        curve="results/mazes/training/{run}.csv",
    wildcard_constraints:
        run=MAZE_RUN,
    params:
        architecture=MAZES["model"],
        schedule=MAZE_SCHEDULE,
        seed=maze_run_seed,
    log:
        "logs/maze_train/{run}.log",
    benchmark:
        "benchmarks/maze_train/{run}.tsv"
    # mazes.training.threads (Snakemake caps it at --cores): tiny models use few cores well,
    # so one thread per run lets runs train side by side on a small machine.
    threads: MAZES["training"]["threads"]
    priority: maze_run_priority
    resources:
        mem_mb=4000,
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_train.py"


rule maze_grpo:
    input:
        model="results/mazes/models/{run}",
        mazes="results/mazes/data/mazes.parquet",
        validation="results/mazes/data/validation.parquet",
    output:
        model=directory("results/mazes/grpo/models/{run}"),
        curve="results/mazes/grpo/curves/{run}.csv",
    wildcard_constraints:
        run=MAZE_GRPO_RUN,
    params:
        settings=MAZE_GRPO,
        seed=maze_grpo_seed,
    log:
        "logs/maze_grpo/{run}.log",
    benchmark:
        "benchmarks/maze_grpo/{run}.tsv"
    # As a training job (mazes.training.threads): sampling and the updates of a tiny model use
    # one core well, so GRPO runs go side by side.
    threads: MAZES["training"]["threads"]
    # Before the engine jobs (priority 0): the post-trained model's own evaluation waits for it.
    priority: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_grpo.py"


rule maze_evaluation:
    input:
        traces=[f"results/traces/{slug(r['model'])}/{r['dataset']}.parquet" for r in maze_evaluation_runs()],
        problems=[f"results/problems/{r['dataset']}.parquet" for r in maze_evaluation_runs()],
    output:
        table=report(
            "results/tables/mazes.csv",
            caption="../../report/mazes.rst",
            category="Mazes",
        ),
        per_trace="results/mazes/evaluation.parquet",
    params:
        runs=maze_evaluation_runs(),
    log:
        "logs/maze_evaluation/maze_evaluation.log",
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_evaluation.py"


rule maze_grpo_table:
    input:
        "results/mazes/evaluation.parquet",
    output:
        report(
            "results/tables/maze_grpo.csv",
            caption="../../report/mazes.rst",
            category="Mazes",
        ),
    params:
        pairs=[list(pair) for pair in MAZE_GRPO_PAIRS],
    log:
        "logs/maze_grpo_table/maze_grpo_table.log",
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_grpo_table.py"


rule maze_potential_curves:
    input:
        # The dynamics stage's per-trace events summary: the project's one event detector.
        [f"results/dynamics/{slug(m)}/{d}.parquet" for m, d in maze_config.potential_runs(config)],
    output:
        table=report(
            "results/tables/maze_potentials.csv",
            caption="../../report/mazes.rst",
            category="Mazes",
        ),
        shapes="results/mazes/curve_shapes.parquet",
    params:
        runs=maze_potential_labels(),
    log:
        "logs/maze_potential_curves/maze_potential_curves.log",
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_potential_curves.py"


rule maze_report:
    input:
        **maze_report_sources(),
    output:
        context="results/mazes/report/context.json",
        figures=directory("results/report/figures/_mazes"),
    params:
        runs=maze_evaluation_runs(),
        run_data={run: spec["data"] for run, spec in MAZE_RUNS.items()},
        potential_runs=maze_potential_labels(),
        examples=MAZES["report"]["examples"],
    log:
        "logs/maze_report/maze_report.log",
    conda:
        "../../envs/mazes.yaml"
    script:
        "../scripts/maze_report.py"
