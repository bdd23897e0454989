"""Rule convert_gguf: GGUF -> an HF folder that vLLM can load."""
from pathlib import Path

from cot_potential.logs import job_log
from cot_potential.models import convert_gguf


def main(smk):
    convert_gguf(Path(smk.input[0]), Path(smk.output[0]), smk.params.source.get("dtype", "bfloat16"))


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
