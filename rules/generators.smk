# Generators: the fitted demo model, and features/statistics of generated sets.


rule fit_demo_generator:
    input:
        lambda wildcards: as_source(PLAN.image_set_path(PLAN.fit_on(wildcards.generator))),
        manifest=lambda wildcards: image_manifest(PLAN.fit_on(wildcards.generator)),
    output:
        "<results>/generators/{generator}.pt",
    log:
        "<logs>/generators/fit_{generator}.log",
    conda:
        "../envs/torch.yaml"
    params:
        z_dim=lambda wildcards: PLAN.generator(wildcards.generator)["z_dim"],
        resolution=lambda wildcards: PLAN.generator(wildcards.generator)["resolution"],
    script:
        "../scripts/fit_demo_generator.py"


rule generated_features:
    input:
        network=lambda wildcards: PLAN.generator_network(wildcards.generator),
        weights=PLAN.weights_path(),
    output:
        features="<results>/generated/{generator}/features_n{n}_z{z}.npz",
        stats="<results>/generated/{generator}/stats_n{n}_z{z}.npz",
    log:
        "<logs>/generated/{generator}_n{n}_z{z}.log",
    benchmark:
        "<benchmarks>/generated/{generator}_n{n}_z{z}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        detector=PLAN.detector_params(),
        generation=lambda wildcards: PLAN.generation_settings(wildcards.generator, wildcards.n, wildcards.z),
        which=lambda wildcards: PLAN.which(wildcards.generator),
        device=config["device"],
        batch_size=config["batch_size"],
        cache=PLAN.feature_cache,
    script:
        "../scripts/generated_features.py"
