"""Rule generate_traces: K sampled traces per problem, graded."""
from cot_potential.logs import job_log
from cot_potential.traces import generate_job


def main(smk):
    generate_job(smk.input.card, smk.input.problems, smk.output[0],
                 per_problem=smk.params.per_problem, seed=smk.params.seed, grader=smk.params.grader,
                 grading=smk.params.grading, threads=smk.threads, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
