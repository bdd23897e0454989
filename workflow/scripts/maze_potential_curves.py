"""Rule maze_potential_curves: monotone curves and spikes of maze models, compared."""
from cot_potential.logs import job_log
from cot_potential.mazes.curves import curves_job


def main(smk):
    curves_job(smk.params.runs, list(smk.input), smk.output.table, smk.output.shapes, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
