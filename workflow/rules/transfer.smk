rule transfer_prefixes:
    input:
        unpack(transfer_inputs),
    output:
        "results/prefixes/{model}/{dataset}.parquet",
    wildcard_constraints:
        model=TRANSFER_RUN,
    params:
        pair=transfer_pair,
        imported=transfer_imported_spec,
        conditions=TRANSFER["conditions"],
        alone_factor=TRANSFER["alone_factor"],
        placed_span=TRANSFER["placed_span"],
        filler_text=TRANSFER["filler_text"],
        n=transfer_n,
        seed=job_seed("transfer"),
        grading=config["grading"],
        # answer_leak is a grader verdict: a new grader version reflags the prefixes.
        grader_version=current_grader_version,
        # ... and so does a new answer locator (the leak flag's "states the gold answer").
        locator_version=LOCATOR_VERSION,
    log:
        "logs/transfer_prefixes/{model}/{dataset}.log",
    conda:
        ENGINE_ENV
    script:
        "../scripts/transfer_prefixes.py"


rule transfer_table:
    input:
        [f"results/potentials/{run}/{dataset}.parquet" for run, dataset in transfer_runs()],
    output:
        table=report(
            "results/tables/transfer.csv",
            caption="../../report/transfer.rst",
            category="Transfer",
        ),
        fstar="results/tables/transfer_fstar.csv",
        paired="results/tables/transfer_paired.csv",
    params:
        runs=transfer_run_labels(),
        seed=config["seed"],
        alpha=TRANSFER["alpha"],
        threshold=TRANSFER["unlock_threshold"],
        primary=[TRANSFER["primary_fraction"], TRANSFER["primary_control"]],
    log:
        "logs/transfer_table/transfer_table.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/transfer_table.py"
