"""Rule plot_dynamics: curves with their events marked, and the distributions of a run."""
from cot_potential.dynamics_report import figures_job
from cot_potential.logs import job_log


def main(smk):
    figures_job(smk.input.potentials, smk.input.events, smk.input.dynamics, smk.output[0],
                max_curves=smk.params.max_curves)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
