"""Rule adaptive_rollout: sample one shard in rounds, grading each round (rollouts.sampling: adaptive)."""
from cot_potential.adaptive import adaptive_rollout_job
from cot_potential.logs import job_log


def main(smk):
    adaptive_rollout_job(smk.input.card, smk.input.traces, smk.input.prefixes, smk.input.problems,
                         smk.output.rollouts, smk.output.prefixes, shard=int(smk.wildcards.shard),
                         shards=smk.params.shards, n=smk.params.n, settings=smk.params.settings,
                         keep_token_ids=smk.params.keep_token_ids,
                         cut_settings=smk.params.cut_settings, grader=smk.params.grader,
                         grading=smk.params.grading, seed=smk.params.seed, store=smk.params.store,
                         threads=smk.threads, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
