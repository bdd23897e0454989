"""Rule maze_training_data: training and validation mazes, and the three kinds of sequences."""
from cot_potential.logs import job_log
from cot_potential.mazes.datasets import KINDS, training_data_job


def main(smk):
    training_data_job(list(smk.input), smk.output.mazes, smk.output.validation,
                      {kind: smk.output[kind] for kind in KINDS}, spec=smk.params.spec,
                      eval_mazes=smk.params.eval_mazes, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
