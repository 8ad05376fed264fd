"""One model's Table 2 row: five FIDs and the face-presence rates, from the saved study."""

from fidlens.studies.pairs.study import Study
from fidlens.studies.pairs.table import study_row, write_row
from fidlens.metrics.stats import Statistics
from fidlens.workflow.jobs import logged


def main(study_path: str, reference: str, out: str, covariance: str, log: str, threads: int) -> None:
    with logged(log, threads):
        study = Study.load(study_path)
        row = study_row(study, Statistics.load(reference), covariance=covariance)
        row["generator"] = study.meta["generator"]
        row["face_detector"] = study.meta.get("face_detector")
        for key, value in row.items():
            print(f"{key}: {value}")
        write_row(row, out)


if __name__ == "__main__":
    main(snakemake.input.study, snakemake.input.reference, snakemake.output[0], snakemake.params.covariance,
         snakemake.log[0], snakemake.threads)
