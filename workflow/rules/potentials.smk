rule potentials:
    input:
        prefixes="results/prefixes/{model}/{dataset}.parquet",
        grades=shard_files("grades"),
    output:
        report(
            "results/potentials/{model}/{dataset}.parquet",
            caption="../../report/potentials.rst",
            category="Potentials",
        ),
    log:
        "logs/potentials/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/potentials.py"
