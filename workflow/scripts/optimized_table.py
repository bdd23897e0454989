"""Rule optimized_table: potential-optimized traces vs. ordinary traces vs. best-of-n at equal tokens."""
from cot_potential.logs import job_log
from cot_potential.optimize import table_job


def main(smk):
    table_job(smk.params.runs, list(smk.input.optimized), list(smk.input.steps), list(smk.input.optimized_dynamics),
              list(smk.input.potentials), list(smk.input.traces), list(smk.input.dynamics), smk.output[0],
              seed=smk.params.seed, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
