"""A pairs file the workflow cannot make: stop and say how a person makes one."""

from fidlens.studies.pairs.spec import PairsFileError, pairs_file_instructions
from fidlens.workflow.jobs import job


def main(dest: str, network: str) -> None:
    """Fail with the instructions (the job context writes them to the rule's log as its error line)."""
    raise PairsFileError(pairs_file_instructions(dest, network))


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.output[0], snakemake.params.network)
