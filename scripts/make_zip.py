"""Build a StyleGAN dataset ZIP from a folder; the resize filter goes into dataset.json."""

from fidlens.data.zipbuild import build_stylegan_zip
from fidlens.workflow.jobs import job


def main(source: str, dest: str, options: dict) -> None:
    meta = build_stylegan_zip(source, dest, progress=True, **options)
    print(f"{meta['num_images']} images -> {dest} (resolution {meta['resolution']}, filter {meta['resize_filter']})")


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.input[0], snakemake.output[0], snakemake.params.options)
