"""The demo figure: FID against disturbance level, with the faces it was measured on, and its numbers as CSV."""

from pathlib import Path

from fidlens.studies.demo import plot_fid_vs_distortion
from fidlens.workflow.provenance import record_job_provenance
from fidlens.workflow.jobs import logged


def main(table: str, image_dirs: list[str], out: str, numbers: str, sample: str, log: str) -> None:
    with logged(log):
        dirs = {Path(d).name: Path(d) for d in image_dirs}
        plot_fid_vs_distortion(table, dirs, out, sample=sample, out_csv=numbers)
        print(f"wrote {out} and its numbers {numbers}")


if __name__ == "__main__":
    main(snakemake.input.table, snakemake.input.images, snakemake.output.figure, snakemake.output.numbers,
         snakemake.params.sample, snakemake.log[0])
    record_job_provenance(snakemake)
