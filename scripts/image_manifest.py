"""The content manifest (names, sizes, sha256) of one image folder or ZIP."""

from fidlens.data.manifest import write_manifest
from fidlens.workflow.jobs import logged


def main(source: str, out: str, log: str) -> None:
    with logged(log):
        content = write_manifest(source, out)
        print(f"{content['num_files']} files, {content['total_bytes']} bytes, sha256 {content['sha256']} -> {out}")


if __name__ == "__main__":
    main(snakemake.input[0], snakemake.output[0], snakemake.log[0])
