"""One model's Table 2 row: five FIDs and the face-presence rates, from the saved study."""

from fidlens.metrics.stats import Statistics
from fidlens.studies.pairs.study_file import Study
from fidlens.studies.pairs.table import study_row, write_row
from fidlens.workflow.jobs import job


def main(study_path: str, reference: str, out: str, covariance: str) -> None:
    study = Study.load(study_path)
    row = study_row(study, Statistics.load(reference), covariance=covariance)
    row["generator"] = study.meta["generator"]
    row["face_detector"] = study.meta.get("face_detector")
    for key, value in row.items():
        print(f"{key}: {value}")
    write_row(row, out)


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.input.study, snakemake.input.reference, snakemake.output[0], snakemake.params.covariance)
