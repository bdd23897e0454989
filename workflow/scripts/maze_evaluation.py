"""Rule maze_evaluation: plan accuracy, trace validity, trace length vs. complexity."""
from cot_potential.logs import job_log
from cot_potential.mazes.evaluation import evaluation_job


def main(smk):
    evaluation_job(smk.params.runs, list(smk.input.traces), list(smk.input.problems), smk.output.table,
                   smk.output.per_trace, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
