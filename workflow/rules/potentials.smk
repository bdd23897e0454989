rule potentials:
    input:
        prefixes=run_prefix_tables,
        grades=shard_files("grades"),
    output:
        report(
            "results/potentials/{model}/{dataset}.parquet",
            caption="../../report/potentials.rst",
            category="Potentials",
        ),
    params:
        adaptive=adaptive_params,
    log:
        "logs/potentials/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/potentials.py"
