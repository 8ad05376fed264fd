"""A dataset ZIP the workflow cannot download: stop with where to get the images and how to build it."""

from pathlib import Path

from fidlens.assets.registry import dataset_instructions
from fidlens.core.errors import AssetError


def main(dest: str, log: str) -> None:
    message = dataset_instructions(dest)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    Path(log).write_text(message + "\n")
    raise AssetError(message)


if __name__ == "__main__":
    main(snakemake.output[0], snakemake.log[0])
