"""Rule maze_report: the maze section's figures and the context the report renders."""
from cot_potential.logs import job_log
from cot_potential.mazes.report import report_job


def main(smk):
    inputs = {key: smk.input[key] for key in ("evaluation", "table", "curves", "shapes") if key in smk.input.keys()}
    lists = {key: list(smk.input[key]) for key in ("traces", "problems", "potentials") if key in smk.input.keys()}
    report_job(smk.output.context, smk.output.figures, training=list(smk.input.training), runs=smk.params.runs,
               run_data=smk.params.run_data,
               potential_runs=smk.params.potential_runs, n_examples=smk.params.examples, **inputs, **lists)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
