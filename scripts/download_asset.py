"""Download one registry asset to its target: resumable, atomic, checked (pinned or first-download record)."""

from fidlens.assets.registry import fetch_asset
from fidlens.workflow.jobs import logged


def main(name: str, dest: str, url: str | None, log: str) -> None:
    with logged(log):
        print(fetch_asset(name, dest, url=url, log=print))


if __name__ == "__main__":
    main(snakemake.params.name, snakemake.output[0], snakemake.params.url, snakemake.log[0])
