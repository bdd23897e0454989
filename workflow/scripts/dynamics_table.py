"""Rule dynamics_table: the rates of monotone traces, spikes, insights, jumps, drops, tangents,
flaws and lucky guesses per run, with 95% CIs for traces clustered in problems, and pass@k."""
from cot_potential.logs import job_log
from cot_potential.rates import dynamics_table_job


def main(smk):
    dynamics_table_job(smk.params.runs, list(smk.input.traces), list(smk.input.events), list(smk.input.potentials),
                       list(smk.input.problems), smk.output[0],
                       human_labels=smk.params.human_labels, judge_paths=smk.params.judge_labels,
                       settings=smk.params.settings, prefixes=smk.params.prefixes, seed=smk.params.seed,
                       config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
