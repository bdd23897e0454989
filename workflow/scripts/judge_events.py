"""Rule judge_events: an LLM judge labels every spike (insight | jump) and drop (tangent | flaw | other),
versioned prompts."""
from cot_potential.judge import judge_job
from cot_potential.logs import job_log


def main(smk):
    judge_job(smk.input.card, smk.input.annotations, smk.output[0], seed=smk.params.seed,
              max_tokens=smk.params.max_tokens, threads=smk.threads, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
