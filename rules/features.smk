# Image sets → cached detector features → float64 FID statistics.


rule features:
    input:
        images=lambda wildcards: as_source(PLAN.image_set_path(wildcards.dataset)),  # its content: the manifest
        manifest=lambda wildcards: image_manifest(wildcards.dataset),
        weights=PLAN.weights_path(),
    output:
        "<results>/features/{dataset}.npz",
    log:
        "<logs>/features/{dataset}.log",
    benchmark:
        "<benchmarks>/features/{dataset}.tsv"
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        detector=PLAN.detector_params(),
        device=config["device"],
        batch_size=config["batch_size"],
        workers=config["workers"],
        max_images=lambda wildcards: PLAN.max_images(wildcards.dataset),
        cache=PLAN.feature_cache,
    script:
        "../scripts/features.py"


rule statistics:
    input:
        "<results>/features/{dataset}.npz",
    output:
        "<results>/stats/{dataset}.npz",
    log:
        "<logs>/stats/{dataset}.log",
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/data.yaml"
    params:
        covariance=config["covariance"],
    script:
        "../scripts/statistics.py"
