rule events:
    input:
        unpack(curve_inputs),
    output:
        events=report(
            "results/events/{model}/{dataset}.parquet",
            caption="../../report/dynamics.rst",
            category="Trace dynamics",
        ),
        traces="results/dynamics/{model}/{dataset}.parquet",
    wildcard_constraints:
        model=CURVE_RUN,
    params:
        settings=DYNAMICS,
    log:
        "logs/events/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/events.py"


rule annotations:
    input:
        unpack(curve_inputs),
        events="results/events/{model}/{dataset}.parquet",
        problems=curve_problems,
    output:
        csv="results/annotations/{model}/{dataset}.csv",
        jsonl="results/annotations/{model}/{dataset}.jsonl",
    wildcard_constraints:
        model=CURVE_RUN,
    params:
        context_chars=DYNAMICS["annotation_context_chars"],
    log:
        "logs/annotations/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/annotations.py"


rule judge_events:
    input:
        card=judge_card,
        annotations="results/annotations/{model}/{dataset}.csv",
    output:
        "results/labels/{model}/{dataset}/judge.parquet",
    wildcard_constraints:
        model=CURVE_RUN,
    params:
        seed=job_seed("judge"),
        max_tokens=DYNAMICS["judge"]["max_tokens"],
        prompt_version=JUDGE_PROMPT_VERSION,
    log:
        "logs/judge_events/{model}/{dataset}.log",
    benchmark:
        "benchmarks/judge_events/{model}/{dataset}.tsv"
    # An engine job (see generate_traces).
    threads: judge_threads
    resources:
        gpu=judge_gpus,
    conda:
        ENGINE_ENV
    script:
        "../scripts/judge_events.py"


rule dynamics_table:
    input:
        traces=[f"results/dynamics/{run}/{d}.parquet" for run, d in curve_runs()],
        events=[f"results/events/{run}/{d}.parquet" for run, d in curve_runs()],
        potentials=[curve_paths(run, d)["potentials"] for run, d in curve_runs()],
        problems=[f"results/problems/{problems_of(d)}.parquet" for run, d in curve_runs()],
        annotations=[f"results/annotations/{run}/{d}.csv" for run, d in curve_runs()],
        human_labels=list(human_label_files().values()),
        judge_labels=list(judge_label_files().values()),
    output:
        report(
            "results/tables/dynamics.csv",
            caption="../../report/dynamics.rst",
            category="Trace dynamics",
        ),
    params:
        runs=curve_run_labels(),
        human_labels=human_label_files(),
        judge_labels=judge_label_files(),
        settings=DYNAMICS,
        prefixes=cut_grid(),
        seed=config["seed"],
    log:
        "logs/dynamics_table/dynamics_table.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/dynamics_table.py"


rule power_curve:
    output:
        "results/tables/power.csv",
    params:
        fractions=config["prefixes"]["fractions"],
        settings=DYNAMICS,
        power=DYNAMICS["power"],
        seed=config["seed"],
    log:
        "logs/power_curve/power_curve.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/power_curve.py"


rule plot_dynamics:
    input:
        unpack(curve_inputs),
        events="results/events/{model}/{dataset}.parquet",
        dynamics="results/dynamics/{model}/{dataset}.parquet",
    output:
        report(
            directory("results/report/dynamics/{model}/{dataset}"),
            patterns=["{name}.png"],
            caption="../../report/dynamics.rst",
            category="Trace dynamics",
            subcategory="{model} / {dataset}",
        ),
    wildcard_constraints:
        model=CURVE_RUN,
    params:
        max_curves=config["report"]["max_curves"],
    log:
        "logs/plot_dynamics/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_dynamics.py"


rule plot_power:
    input:
        "results/tables/power.csv",
    output:
        report(
            "results/report/dynamics/power.png",
            caption="../../report/dynamics.rst",
            category="Trace dynamics",
        ),
    log:
        "logs/plot_power/plot_power.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_power.py"
