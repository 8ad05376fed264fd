"""The demo figure: FID against disturbance level, with the faces it was measured on, and its numbers as CSV."""

from pathlib import Path

from fidlens.studies.demo import plot_fid_vs_distortion
from fidlens.workflow.jobs import job


def main(table: str, image_dirs: list[str], out: str, numbers: str, sample: str) -> None:
    dirs = {Path(d).name: Path(d) for d in image_dirs}
    plot_fid_vs_distortion(table, dirs, out, sample=sample, out_csv=numbers)
    print(f"wrote {out} and its numbers {numbers}")


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.input.table, snakemake.input.images, snakemake.output.figure, snakemake.output.numbers,
             snakemake.params.sample)
