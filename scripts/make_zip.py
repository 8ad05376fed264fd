"""Build a StyleGAN dataset ZIP from a folder; the resize filter goes into dataset.json."""

from fidlens.workflow.jobs import logged
from fidlens.data.zipbuild import build_stylegan_zip


def main(source: str, dest: str, options: dict, log: str) -> None:
    with logged(log):
        meta = build_stylegan_zip(source, dest, progress=True, **options)
        print(f"{meta['num_images']} images -> {dest} (resolution {meta['resolution']}, filter {meta['resize_filter']})")


if __name__ == "__main__":
    main(snakemake.input[0], snakemake.output[0], snakemake.params.options, snakemake.log[0])
