"""Precision, recall, density and coverage of every configured set, in the detector's feature space: tables/prdc.csv."""

from fidlens.studies.metric_tables import prdc_rows, write_rows
from fidlens.workflow.jobs import job


def main(reference: str, sets: dict, settings: dict, out: str) -> None:
    rows = prdc_rows(reference, sets, k_pr=settings["k_pr"], k_dc=settings["k_dc"])
    write_rows(rows, out)
    for row in rows:
        print(f"{row['set']:>16}: precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"density {row['density']:.3f}  coverage {row['coverage']:.3f}")
    print(f"note: {rows[0]['note']}")


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        main(i.reference, dict(zip(p.labels, i.sets)), p.settings, snakemake.output[0])
