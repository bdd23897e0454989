rule rollout:
    input:
        card=card_path,
        prefixes="results/prefixes/{model}/{dataset}.parquet",
    output:
        "results/rollouts/{model}/{dataset}/shard-{shard}.parquet",
    params:
        n=config["rollouts"]["n"],
        shards=n_shards,
        keep_token_ids=config["rollouts"]["keep_token_ids"],
        seed=job_seed("rollouts"),
        store=sample_store,
    log:
        "logs/rollout/{model}/{dataset}/shard-{shard}.log",
    benchmark:
        "benchmarks/rollout/{model}/{dataset}/shard-{shard}.tsv"
    # See generate_traces: engine jobs never share a laptop's cores.
    threads: engine_threads
    resources:
        gpu=engine_gpus,
    conda:
        ENGINE_ENV
    script:
        "../scripts/rollout.py"


# rollouts.sampling: adaptive - the engine samples in rounds and grades each round to decide
# the next (adaptive.py); it writes the shard's rollouts and the cuts it chose. In fixed mode
# its model constraint matches nothing, so `rollout` makes every shard.
ruleorder: adaptive_rollout > rollout


rule adaptive_rollout:
    input:
        card=card_path,
        traces="results/traces/{model}/{dataset}.parquet",
        prefixes="results/prefixes/{model}/{dataset}.parquet",
        problems=problems_table,
    output:
        rollouts="results/rollouts/{model}/{dataset}/shard-{shard}.parquet",
        prefixes="results/prefixes/{model}/{dataset}/shard-{shard}.parquet",
    wildcard_constraints:
        model=ADAPTIVE_RUN,
    params:
        n=config["rollouts"]["n"],
        shards=n_shards,
        settings=config["rollouts"]["adaptive"],
        keep_token_ids=config["rollouts"]["keep_token_ids"],
        cut_settings=config["prefixes"],
        grader=dataset_grader,
        grading=model_grading,
        seed=job_seed("rollouts"),
        store=sample_store,
    log:
        "logs/adaptive_rollout/{model}/{dataset}/shard-{shard}.log",
    benchmark:
        "benchmarks/adaptive_rollout/{model}/{dataset}/shard-{shard}.tsv"
    # An engine job (see generate_traces); it also grades each round in grading workers.
    threads: engine_threads
    resources:
        gpu=engine_gpus,
    conda:
        ENGINE_ENV
    script:
        "../scripts/adaptive_rollout.py"
