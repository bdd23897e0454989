rule generate_traces:
    input:
        card="results/models/{model}/card.json",
        problems="results/problems/{dataset}.parquet",
    output:
        "results/traces/{model}/{dataset}.parquet",
    wildcard_constraints:
        dataset=GENERATED_DATASET,
    params:
        per_problem=config["traces"]["per_problem"],
        seed=job_seed("traces"),
        grading=model_grading,
        grader=dataset_grader,
        grader_version=current_grader_version,
    log:
        "logs/generate_traces/{model}/{dataset}.log",
    benchmark:
        "benchmarks/generate_traces/{model}/{dataset}.tsv"
    # An engine job: `engine.threads` cores (Snakemake caps them at --cores). The default 4
    # is at least a laptop's, so two CPU engines never share it; a GPU engine needs only a few,
    # a tiny model's CPU engine one (it then binds to a CPU of its own, gpus.place_cpus).
    threads: engine_threads
    resources:
        gpu=engine_gpus,
    conda:
        ENGINE_ENV
    script:
        "../scripts/generate_traces.py"


rule import_traces:
    input:
        card="results/models/{model}/card.json",
        problems=problems_table,
    output:
        "results/traces/{model}/{dataset}.parquet",
    wildcard_constraints:
        dataset=IMPORTED_SET,
    params:
        spec=imported_spec,
        grading=config["grading"],
        grader=dataset_grader,
        grader_version=current_grader_version,
    log:
        "logs/import_traces/{model}/{dataset}.log",
    conda:
        ENGINE_ENV
    script:
        "../scripts/import_traces.py"
