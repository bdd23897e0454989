"""Rule potentials: per prefix, the share of correct completions with its exact CI."""
from cot_potential.logs import job_log
from cot_potential.potentials import potentials_job


def main(smk):
    potentials_job(list(smk.input.prefixes), list(smk.input.grades), smk.output[0], config=smk.config,
                   adaptive=smk.params.adaptive)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
