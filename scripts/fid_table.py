"""FID and KID of every demo set against the reference, as one CSV row each."""

from fidlens.core.progress import note
from fidlens.studies.demo import demo_sets, fid_table_rows, write_table
from fidlens.workflow.jobs import job


def main(reference: dict, sets: dict, distortions: dict, kid: dict, out: str) -> None:
    rows = fid_table_rows(reference, sets, demo_sets(distortions), kid)
    write_table(rows, out)
    for row in rows:
        print(f"{row['set']:>12}: FID {row['fid']:.2f}  KIDx1000 {row['kid_x1000']:.2f}")
    # the demo's headline: say on the console that it is there (the rest of the DAG keeps running)
    fids = ", ".join(f"{row['set']} {row['fid']:.1f}" for row in rows[:3])
    note(f"FID table ready: {out} ({len(rows)} sets; {fids}, ...)", tag="fid_table")


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        ref = {"stats": i.ref_stats, "features": i.ref_features}
        sets = {name: {"stats": s, "features": f} for name, s, f in zip(p.names, i.stats, i.features)}
        main(ref, sets, p.distortions, p.kid, snakemake.output[0])
