# Helpers for the download rules in rules/assets.smk. URLs, checksums and the trust-on-first-
# download policy live in the package (fidlens.assets.registry), shared with `fidlens assets`.

from snakemake.exceptions import WorkflowError

try:
    from fidlens.assets.registry import (
        asset_for_target,
        dataset_instructions,
        read_record,
        record_path,
        target_regex,
    )
except ImportError as exc:
    raise WorkflowError(
        f"this workflow needs the fidlens package in Snakemake's Python ({exc}): run the venv's "
        "snakemake (`make venv`, then .venv/bin/snakemake) or `pip install -e .` into this environment"
    )

WEIGHT_DOWNLOADS = target_regex("weights")
NETWORK_DOWNLOADS = target_regex("network")


def download_target(folder, wildcards):
    """The file a download writes: weights into $FIDLENS_HOME/weights, the rest under resources/."""
    if folder == "weights":
        return f"{PLAN.weights_dir}/{wildcards.file}"
    return f"resources/{folder}/{wildcards.file}"


def download_source_url(folder, wildcards):
    """The registry URL, or a weights URL of the config when it names the same file (a mirror)."""
    configured = PLAN.configured_urls().get(wildcards.file) if folder == "weights" else None
    return configured or asset_for_target(download_target(folder, wildcards)).url


def download_check(folder, wildcards):
    """How the download will be checked, for the job's message (and so for `snakemake -n`)."""
    target = download_target(folder, wildcards)
    asset = asset_for_target(target)
    if asset.pinned:
        return f"sha256 {asset.sha256} pinned"
    record = read_record(target)
    if record is not None:
        return f"checked against its first-download record {record_path(target)}, sha256 {record['sha256']}"
    prefix = f"sha256 prefix {asset.sha256} published; " if asset.sha256 else ""
    return (f"{prefix}no full sha256 published upstream: trusted on first download, "
            f"recorded in {record_path(target)}")


def download_params(folder):
    """Params for a download rule: the registry name, URL and checksum policy of its FILE."""
    return {
        "name": lambda wc: asset_for_target(download_target(folder, wc)).name,
        "url": lambda wc: download_source_url(folder, wc),
        "check": lambda wc: download_check(folder, wc),
    }


def place_by_hand(wildcards, output):
    return dataset_instructions(output[0])
