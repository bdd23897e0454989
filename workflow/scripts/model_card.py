"""Rule model_card: what determines a model's outputs, and its identity digest."""
from cot_potential.logs import job_log
from cot_potential.models import card_job


def main(smk):
    card_job(smk.config, smk.params.name, smk.output[0])


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
