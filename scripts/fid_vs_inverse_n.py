"""FID∞ and KID∞ (Chong & Forsyth 2020) of every configured set: figures/fid_vs_inverse_n.png, .csv, .json."""

from fidlens.studies.fid_infinity_run import extrapolate_sets, too_small, write_outputs
from fidlens.workflow.jobs import job


def main(reference: str, sets: dict, settings: dict, covariance: str, outputs: dict) -> None:
    skipped = too_small(sets)
    results, space = extrapolate_sets(reference, {k: v for k, v in sets.items() if k not in skipped},
                                      points=settings["points"], seed=settings["seed"], covariance=covariance)
    write_outputs(results, outputs, reference=reference, space=space, covariance=covariance, skipped=skipped)
    for message in skipped.values():
        print(f"note: {message}")
    for label, result in results.items():
        kid = "" if result.kid is None else f", KIDx1000_inf {1000 * result.kid.intercept:.3f}"
        print(f"{label:>16}: FID_inf {result.fid.intercept:.3f} (R² {result.fid.r_squared:.4f}){kid}")
        for note in result.notes:
            print(f"  note: {note}")


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        main(i.reference, dict(zip(p.labels, i.sets)), p.settings, p.covariance, dict(snakemake.output.items()))
