"""Rule rollout: N completions of every prefix of one shard."""
from cot_potential.logs import job_log
from cot_potential.rollouts import rollout_job


def main(smk):
    rollout_job(smk.input.card, smk.input.prefixes, smk.output[0],
                shard=int(smk.wildcards.shard), shards=smk.params.shards, n=smk.params.n,
                seed=smk.params.seed, keep_token_ids=smk.params.keep_token_ids,
                threads=smk.threads, config=smk.config, store=smk.params.store)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
