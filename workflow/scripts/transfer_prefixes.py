"""Rule transfer_prefixes: a source's CoT (and the controls) placed in the target's turn."""
from cot_potential.logs import job_log
from cot_potential.transfer import prefixes_job


def main(smk):
    inputs = dict(smk.input.items())
    prefixes_job(
        problems_path=inputs["problems"], target_card_path=inputs["target_card"],
        source_traces_path=inputs.get("source_traces"), source_card_path=inputs.get("source_card"),
        own_traces_path=inputs.get("own_traces"), imported=smk.params.imported, out=smk.output[0],
        fractions=smk.params.pair["fractions"], conditions=smk.params.conditions, n=smk.params.n,
        alone_factor=smk.params.alone_factor, seed=smk.params.seed, grading=smk.params.grading,
        config=smk.config, budget=smk.params.pair.get("budget"), placed_span=smk.params.placed_span,
        filler_text=smk.params.filler_text,
    )


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
