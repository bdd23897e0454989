"""Rule plot_transfer: the figures of one transfer (pair, dataset)."""
from cot_potential.logs import job_log
from cot_potential.report import transfer_figures_job


def main(smk):
    pair = smk.params.pair
    transfer_figures_job(smk.input.table, smk.input.potentials, smk.output[0], source=pair["source"],
                         target=pair["target"], dataset=smk.wildcards.dataset, fstar_path=smk.input.fstar)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
