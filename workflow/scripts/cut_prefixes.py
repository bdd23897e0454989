"""Rule cut_prefixes: cut every trace into prefixes with their exact prompt ids."""
from cot_potential.logs import job_log
from cot_potential.prefixes import cut_job


def main(smk):
    cut_job(smk.input.card, smk.input.traces, smk.output[0], settings=smk.params.settings, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
