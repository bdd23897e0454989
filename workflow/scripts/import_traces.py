"""Rule import_traces: traces brought in as text, tokenized for the continuing model, graded."""
from cot_potential.logs import job_log
from cot_potential.traces import import_job


def main(smk):
    import_job(smk.input.card, smk.input.problems, smk.output[0],
               spec=smk.params.spec, grader=smk.params.grader, grading=smk.params.grading, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
