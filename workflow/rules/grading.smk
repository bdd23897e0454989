rule grade:
    input:
        card=card_path,
        problems=problems_table,
        prefixes=shard_prefix_table,
        rollouts="results/rollouts/{model}/{dataset}/shard-{shard}.parquet",
    output:
        "results/grades/{model}/{dataset}/shard-{shard}.parquet",
    params:
        settings=model_grading,
        grader=dataset_grader,
        grader_version=current_grader_version,
    log:
        "logs/grade/{model}/{dataset}/shard-{shard}.log",
    benchmark:
        "benchmarks/grade/{model}/{dataset}/shard-{shard}.tsv"
    threads: config["grading"]["workers"]
    conda:
        "../../envs/grading.yaml"
    script:
        "../scripts/grade.py"
