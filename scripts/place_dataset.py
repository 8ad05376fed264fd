"""A dataset ZIP the workflow cannot download: stop with where to get the images and how to build it."""

from fidlens.assets.registry import dataset_instructions
from fidlens.core.errors import AssetError
from fidlens.workflow.jobs import job


def main(dest: str) -> None:
    """Fail with the instructions (the job context writes them to the rule's log as its error line)."""
    raise AssetError(dataset_instructions(dest))


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.output[0])
