"""Rule transfer_table: the unlock analysis of every transfer pair."""
from cot_potential.logs import job_log
from cot_potential.unlocks import table_job


def main(smk):
    table_job(list(smk.input), smk.params.runs, smk.output.table, seed=smk.params.seed, config=smk.config,
              fstar_out=smk.output.fstar, paired_out=smk.output.paired, alpha=smk.params.alpha,
              threshold=smk.params.threshold, primary=tuple(smk.params.primary))


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
