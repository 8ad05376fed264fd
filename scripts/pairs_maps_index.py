"""An index of one model's pair maps: each pair, its FIDs and the swap's change, linked to its figure."""

import json
from pathlib import Path

from fidlens.core.atomic import atomic_path
from fidlens.workflow.provenance import record_job_provenance
from fidlens.core.rawdata import write_csv
from fidlens.workflow.jobs import logged

CSV_COLUMNS = ["bad", "good", "fid_with_bad", "fid_with_good", "swap_change", "fid_without_image", "figure",
               "numbers", "maps"]


def main(figures: list[str], out: str, csv_out: str, log: str) -> None:
    with logged(log):
        lines = ["| pair | FID with bad | FID with good | ΔFID (swap) | figure |", "|---|---|---|---|---|"]
        rows = []
        for figure in figures:
            numbers = json.loads(Path(figure).with_suffix(".json").read_text())
            lines.append(f"| {numbers['bad']} → {numbers['good']} | {numbers['fid_with_bad']:.4f} | "
                         f"{numbers['fid_with_good']:.4f} | {numbers['swap_change']:+.4f} | {Path(figure).name} |")
            rows.append({**{k: numbers.get(k) for k in CSV_COLUMNS[:6]}, "figure": Path(figure).name,
                         "numbers": Path(figure).with_suffix(".json").name,
                         "maps": Path(figure).with_suffix(".npz").name})
        better = sum(row["swap_change"] < 0 for row in rows)
        lines += ["", f"FID preferred the good image in {better} of {len(figures)} pairs.",
                  f"The same numbers as CSV: {Path(csv_out).name}; raw maps: pair_BAD_GOOD.npz."]
        text = "\n".join(lines) + "\n"
        print(text)
        with atomic_path(out) as tmp:
            Path(tmp).write_text(text)
        write_csv(csv_out, rows, CSV_COLUMNS)


if __name__ == "__main__":
    main(list(snakemake.input), snakemake.output.markdown, snakemake.output.csv, snakemake.log[0])
    record_job_provenance(snakemake)
