rule plot_potentials:
    input:
        "results/potentials/{model}/{dataset}.parquet",
    output:
        report(
            directory("results/report/figures/{model}/{dataset}"),
            patterns=["{name}.png"],
            caption="../../report/curves.rst",
            category="Potential curves",
            subcategory="{model} / {dataset}",
        ),
    params:
        max_curves=config["report"]["max_curves"],
    log:
        "logs/plot_potentials/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_potentials.py"


rule report:
    input:
        potentials=potential_tables(),
        traces=[f"results/traces/{m}/{d}.parquet" for m, d in potential_runs()],
        problems=[f"results/problems/{problems_of(d)}.parquet" for m, d in potential_runs()],
        cards=[f"results/models/{m}/card.json" for m, d in potential_runs()],
        figures=[f"results/report/figures/{m}/{d}" for m, d in potential_runs()],
    output:
        report(
            "results/report/index.html",
            caption="../../report/index.rst",
            category="Report",
        ),
    params:
        runs=potential_runs(),
        max_curves=config["report"]["max_curves"],
    log:
        "logs/report/report.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/report.py"
