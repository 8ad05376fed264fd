"""The content manifest (names, sizes, sha256) of one image folder or ZIP."""

from fidlens.data.manifest import write_manifest
from fidlens.workflow.jobs import job


def main(source: str, out: str) -> None:
    content = write_manifest(source, out)
    print(f"{content['num_files']} files, {content['total_bytes']} bytes, sha256 {content['sha256']} -> {out}")


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.input[0], snakemake.output[0])
