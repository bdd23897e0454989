"""Rule report_page: the report page with its figures embedded, one self-contained file."""
from cot_potential.logs import job_log
from cot_potential.report import standalone_page


def main(smk):
    standalone_page(smk.input[0], smk.output[0])


if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        main(snakemake)
