"""Rule plot_potentials: the figures of one (model, dataset)."""
from cot_potential.logs import job_log
from cot_potential.report import figures_job


def main(smk):
    figures_job(smk.input[0], smk.output[0], smk.params.max_curves, smk.params.formats)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
