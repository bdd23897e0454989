"""Rule power_curve: recall of planted spikes and drops vs. effect size and N on this grid."""
from cot_potential.logs import job_log
from cot_potential.power import power_job


def main(smk):
    power = smk.params.power
    power_job(smk.output[0], fractions=smk.params.fractions, settings=smk.params.settings,
              sizes=power["sizes"], ns=power["ns"], n_curves=power["n_curves"], seed=smk.params.seed,
              config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
