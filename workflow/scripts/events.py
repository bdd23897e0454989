"""Rule events: spikes, drops, recoveries and lucky guesses of every curve, and a summary per trace."""
from cot_potential.dynamics import events_job
from cot_potential.logs import job_log


def main(smk):
    events_job(smk.input.potentials, smk.input.traces, smk.output.events, smk.output.traces,
               settings=smk.params.settings, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
