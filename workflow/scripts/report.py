"""Rule report: the HTML report at results/report/index.html."""
from cot_potential.logs import job_log
from cot_potential.report import Run, report_job


def main(smk):
    report_job([Run(m, d) for m, d in smk.params.runs], list(smk.input.potentials),
               list(smk.input.traces), list(smk.input.problems), list(smk.input.cards),
               list(smk.input.figures), smk.output[0], config=smk.config,
               max_curves=smk.params.max_curves,
               transfer_table=smk.input.transfer_table[0] if smk.input.transfer_table else None,
               transfer_runs=smk.params.transfer_runs,
               transfer_figure_dirs=list(smk.input.transfer_figures),
               dynamics=smk.params.dynamics,
               mazes_context=smk.input.mazes[0] if smk.input.mazes else None)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
