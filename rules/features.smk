# Image sets → cached Inception features → float64 FID statistics.


rule features:
    input:
        images=lambda wildcards: as_source(images_for(wildcards)),  # its content: the manifest
        manifest=image_manifest,
        weights=inception_weights_path(),
    output:
        "results/features/{dataset}.npz",
    log:
        "logs/features/{dataset}.log",
    benchmark:
        "results/benchmarks/features/{dataset}.tsv"
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        device=config["device"],
        batch_size=config["batch_size"],
        workers=config["workers"],
        max_images=max_images_for,
        cache="results/cache/features",
    script:
        "../scripts/features.py"


rule statistics:
    input:
        "results/features/{dataset}.npz",
    output:
        "results/stats/{dataset}.npz",
    log:
        "logs/stats/{dataset}.log",
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/data.yaml"
    params:
        covariance=config["covariance"],
    script:
        "../scripts/statistics.py"
