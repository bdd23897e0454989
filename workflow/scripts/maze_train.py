"""Rule maze_train: train one maze model from scratch; its checkpoint and learning curve."""
from cot_potential.logs import job_log
from cot_potential.mazes.training import train_job


def main(smk):
    train_job(smk.input.sequences, smk.input.validation, smk.input.tokenizer, smk.output.model,
              smk.output.curve, architecture=smk.params.architecture, schedule=smk.params.schedule,
              seed=smk.params.seed, threads=smk.threads, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
