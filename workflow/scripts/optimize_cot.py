"""Rule optimize_cot: build traces chunk by chunk, keeping the candidate of highest estimated
potential, then re-estimate their curves on fresh rollouts."""
from cot_potential.logs import job_log
from cot_potential.optimize import optimize_job


def main(smk):
    optimize_job(smk.input.card, smk.input.problems, smk.output.traces, smk.output.steps, smk.output.potentials,
                 settings=smk.params.settings, prefixes=smk.params.prefixes, n=smk.params.n,
                 seed=smk.params.seed, grader=smk.params.grader, grading=smk.params.grading,
                 threads=smk.threads, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
