"""Rule annotations: every spike and drop with its text and context, for humans to label
(insight | jump, tangent | flaw | other)."""
from cot_potential.labels import annotations_job
from cot_potential.logs import job_log


def main(smk):
    annotations_job(smk.input.events, smk.input.traces, smk.input.problems, smk.output.csv, smk.output.jsonl,
                    model=smk.wildcards.model, dataset=smk.wildcards.dataset,
                    context_chars=smk.params.context_chars, config=smk.config)


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
