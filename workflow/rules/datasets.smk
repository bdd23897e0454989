rule problems:
    output:
        "results/problems/{dataset}.parquet",
    params:
        spec=dataset_spec,
    log:
        "logs/problems/{dataset}.log",
    conda:
        "../../envs/datasets.yaml"
    script:
        "../scripts/problems.py"
