"""A pairs file the workflow cannot make: stop and say how a person makes one."""

from pathlib import Path

from fidlens.studies.pairs.spec import PairsFileError, pairs_file_instructions


def main(dest: str, network: str, log: str) -> None:
    message = pairs_file_instructions(dest, network)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    Path(log).write_text(message + "\n")
    raise PairsFileError(message)


if __name__ == "__main__":
    main(snakemake.output[0], snakemake.params.network, snakemake.log[0])
