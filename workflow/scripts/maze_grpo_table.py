"""Rule maze_grpo_table: the same mazes before and after GRPO, paired (exact McNemar)."""
from cot_potential.logs import job_log
from cot_potential.mazes.evaluation import grpo_comparison_job


def main(smk):
    grpo_comparison_job(smk.input[0], smk.output[0], pairs=smk.params.pairs, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
