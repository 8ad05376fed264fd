"""Bootstrap confidence intervals of FID and KID for every configured set: tables/fid_ci.csv."""

from fidlens.studies.metric_tables import fid_ci_rows, write_rows
from fidlens.workflow.jobs import job


def main(reference: str, sets: dict, settings: dict, covariance: str, out: str) -> None:
    rows = fid_ci_rows(reference, sets, level=settings["level"], resamples=settings["resamples"],
                       seed=settings["seed"], method=settings["interval"],
                       resample_reference=settings["resample_reference"], covariance=covariance)
    write_rows(rows, out)
    for row in rows:
        print(f"{row['set']:>16}: FID {row['fid']:.3f} [{row['fid_low']:.3f}, {row['fid_high']:.3f}]  "
              f"KIDx1000 {row['kid_x1000']:.3f} [{row['kid_low_x1000']:.3f}, {row['kid_high_x1000']:.3f}]  "
              f"({row['level']:.0%} {row['interval']}, B = {row['resamples']})")


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        main(i.reference, dict(zip(p.labels, i.sets)), p.settings, p.covariance, snakemake.output[0])
