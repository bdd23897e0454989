"""Rule maze_tokenizer: the word-level tokenizer of the maze format, in HF format."""
from cot_potential.logs import job_log
from cot_potential.mazes.tokenizer import tokenizer_job


def main(smk):
    tokenizer_job(smk.output[0], max_size=smk.params.max_size, max_length=smk.params.max_length)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
