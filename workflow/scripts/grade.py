"""Rule grade: extract and verify the answer of every completion of one shard."""
from cot_potential.grading import grade_job
from cot_potential.logs import job_log


def main(smk):
    grade_job(smk.input.card, smk.input.problems, smk.input.prefixes, smk.input.rollouts,
              smk.output[0], kind=smk.params.grader, settings=smk.params.settings, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
