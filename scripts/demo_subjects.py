"""Export a range of ORL subjects as the demo's reference or comparison set."""

from fidlens.studies.demo import export_subjects
from fidlens.workflow.jobs import job


def main(orl_dir: str, first: int, last: int, out_dir: str) -> None:
    count = export_subjects(orl_dir, first, last, out_dir)
    print(f"exported {count} faces of subjects {first}-{last} to {out_dir}")


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.input.orl, *snakemake.params.subjects, snakemake.output[0])
