"""Rule plot_power: the detector's power curve (recall vs. effect size and N)."""
from cot_potential.dynamics_report import power_figure_job
from cot_potential.logs import job_log


def main(smk):
    power_figure_job(smk.input[0], smk.output[0])


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
