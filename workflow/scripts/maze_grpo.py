"""Rule maze_grpo: GRPO post-training of one trained maze run; its checkpoint and learning curve."""
from cot_potential.logs import job_log
from cot_potential.mazes.grpo import grpo_job


def main(smk):
    grpo_job(smk.input.model, smk.input.mazes, smk.input.validation, smk.output.model, smk.output.curve,
             settings=smk.params.settings, seed=smk.params.seed, threads=smk.threads, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
