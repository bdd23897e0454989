rule optimize_cot:
    input:
        card="results/models/{model}/card.json",
        problems="results/problems/{dataset}.parquet",
    output:
        traces="results/optimized/{model}/{dataset}/traces.parquet",
        steps="results/optimized/{model}/{dataset}/steps.parquet",
        potentials="results/optimized/{model}/{dataset}/potentials.parquet",
    wildcard_constraints:
        model=MODEL_RUN,
    params:
        settings=optimize_run,
        prefixes=config["prefixes"],
        # The fresh curves' answer cuts sit where the locator finds the answer.
        locator_version=LOCATOR_VERSION,
        n=config["rollouts"]["n"],
        seed=job_seed("optimize"),
        grading=model_grading,
        grader=dataset_grader,
    log:
        "logs/optimize_cot/{model}/{dataset}.log",
    benchmark:
        "benchmarks/optimize_cot/{model}/{dataset}.tsv"
    # An engine job (see generate_traces).
    threads: engine_threads
    resources:
        gpu=engine_gpus,
    conda:
        ENGINE_ENV
    script:
        "../scripts/optimize_cot.py"


rule optimized_table:
    input:
        optimized=[f"results/optimized/{m}/{d}/traces.parquet" for m, d in optimized_runs()],
        steps=[f"results/optimized/{m}/{d}/steps.parquet" for m, d in optimized_runs()],
        optimized_dynamics=[f"results/dynamics/optimized.{m}/{d}.parquet" for m, d in optimized_runs()],
        potentials=[f"results/potentials/{m}/{d}.parquet" for m, d in optimized_runs()],
        traces=[f"results/traces/{m}/{d}.parquet" for m, d in optimized_runs()],
        dynamics=[f"results/dynamics/{m}/{d}.parquet" for m, d in optimized_runs()],
    output:
        report(
            "results/tables/optimized.csv",
            caption="../../report/dynamics.rst",
            category="Trace dynamics",
        ),
    params:
        runs=[{"model": MODEL_BY_SLUG[m], "dataset": d} for m, d in optimized_runs()],
        seed=config["seed"],
    log:
        "logs/optimized_table/optimized_table.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/optimized_table.py"
