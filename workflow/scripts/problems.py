"""Rule problems: load a dataset into the standard problem table."""
from cot_potential.datasets import problems_job
from cot_potential.logs import job_log


def main(smk):
    problems_job(smk.params.spec, smk.wildcards.dataset, smk.output[0], smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
