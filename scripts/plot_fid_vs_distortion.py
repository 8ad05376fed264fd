"""The demo figure: FID against disturbance strength, with the faces it was measured on."""

from pathlib import Path

from fidlens.demo import plot_fid_vs_distortion
from fidlens.provenance import record_job_provenance
from fidlens.workflow import logged


def main(table: str, image_dirs: list[str], out: str, sample: str, log: str) -> None:
    with logged(log):
        dirs = {Path(d).name: Path(d) for d in image_dirs}
        plot_fid_vs_distortion(table, dirs, out, sample=sample)
        print(f"wrote {out}")


if __name__ == "__main__":
    main(snakemake.input.table, snakemake.input.images, snakemake.output[0], snakemake.params.sample,
         snakemake.log[0])
    record_job_provenance(snakemake)
