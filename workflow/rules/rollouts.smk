rule rollout:
    input:
        card=card_path,
        prefixes="results/prefixes/{model}/{dataset}.parquet",
    output:
        "results/rollouts/{model}/{dataset}/shard-{shard}.parquet",
    params:
        n=config["rollouts"]["n"],
        shards=N_SHARDS,
        keep_token_ids=config["rollouts"]["keep_token_ids"],
        seed=job_seed("rollouts"),
    log:
        "logs/rollout/{model}/{dataset}/shard-{shard}.log",
    benchmark:
        "benchmarks/rollout/{model}/{dataset}/shard-{shard}.tsv"
    # See generate_traces: engine jobs never share a laptop's cores.
    threads: 4
    resources:
        gpu=engine_gpus,
    conda:
        "../../envs/engine.yaml"
    script:
        "../scripts/rollout.py"
