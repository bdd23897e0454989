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
    wildcard_constraints:
        model=MODEL_RUN,
    params:
        max_curves=config["report"]["max_curves"],
        formats=config["report"]["figure_formats"],
    log:
        "logs/plot_potentials/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_potentials.py"


rule plot_transfer:
    input:
        table="results/tables/transfer.csv",
        fstar="results/tables/transfer_fstar.csv",
        potentials="results/potentials/{model}/{dataset}.parquet",
    output:
        report(
            directory("results/report/figures/{model}/{dataset}"),
            patterns=["{name}.png"],
            caption="../../report/transfer.rst",
            category="Transfer",
            subcategory="{model} / {dataset}",
        ),
    wildcard_constraints:
        model=TRANSFER_RUN,
    params:
        pair=transfer_pair,
    log:
        "logs/plot_transfer/{model}/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plot_transfer.py"


rule report:
    input:
        potentials=potential_tables(),
        traces=[f"results/traces/{m}/{d}.parquet" for m, d in potential_runs()],
        problems=[f"results/problems/{problems_of(d)}.parquet" for m, d in potential_runs()],
        cards=[f"results/models/{m}/card.json" for m, d in potential_runs()],
        figures=[f"results/report/figures/{m}/{d}" for m, d in potential_runs()],
        transfer_table=transfer_tables(),
        transfer_figures=[f"results/report/figures/{run}/{d}" for run, d in transfer_runs()],
        dynamics=dynamics_report_files(),
        mazes=maze_report_inputs(),
    # Not registered for `snakemake --report`: its figures are files beside it
    # (report_page registers the page with them embedded).
    output:
        "results/report/index.html",
    params:
        runs=potential_runs(),
        transfer_runs=transfer_run_labels(),
        max_curves=config["report"]["max_curves"],
        dynamics=dynamics_report_params(),
    log:
        "logs/report/report.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/report.py"


# The report page as one self-contained file (figures and linked tables embedded as data
# URIs): what `snakemake --report report.zip` (or report.html) shows as the project's report.
rule report_page:
    input:
        "results/report/index.html",
    output:
        report(
            "results/report/cot-potential.html",
            caption="../../report/index.rst",
            category="Report",
        ),
    log:
        "logs/report_page/report_page.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/report_page.py"
