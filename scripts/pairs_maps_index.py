"""An index of one model's pair maps: each pair, its FIDs and the swap's change, linked to its figure."""

import json
from pathlib import Path

from fidlens.atomic import atomic_path
from fidlens.provenance import record_job_provenance
from fidlens.workflow import logged


def main(figures: list[str], out: str, log: str) -> None:
    with logged(log):
        lines = ["| pair | FID with bad | FID with good | ΔFID (swap) | figure |", "|---|---|---|---|---|"]
        for figure in figures:
            numbers = json.loads(Path(figure).with_suffix(".json").read_text())
            lines.append(f"| {numbers['bad']} → {numbers['good']} | {numbers['fid_with_bad']:.4f} | "
                         f"{numbers['fid_with_good']:.4f} | {numbers['swap_change']:+.4f} | {Path(figure).name} |")
        better = sum(json.loads(Path(f).with_suffix(".json").read_text())["swap_change"] < 0 for f in figures)
        lines += ["", f"FID preferred the good image in {better} of {len(figures)} pairs."]
        text = "\n".join(lines) + "\n"
        print(text)
        with atomic_path(out) as tmp:
            Path(tmp).write_text(text)


if __name__ == "__main__":
    main(list(snakemake.input), snakemake.output[0], snakemake.log[0])
    record_job_provenance(snakemake)
