"""Download one registry asset to its target: resumable, atomic, checked (pinned or first-download record)."""

from fidlens.assets.registry import fetch_asset
from fidlens.workflow.jobs import job


def main(name: str, dest: str, url: str | None) -> None:
    print(fetch_asset(name, dest, url=url, log=print))


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.params.name, snakemake.output[0], snakemake.params.url)
