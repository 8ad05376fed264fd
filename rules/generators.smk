# Generators: the fitted demo model, and features/statistics of generated sets.


rule fit_demo_generator:
    input:
        lambda wildcards: as_source(demo_fit_images(wildcards)),
        manifest=demo_fit_manifest,
    output:
        "results/generators/{generator}.pt",
    log:
        "logs/generators/fit_{generator}.log",
    conda:
        "../envs/torch.yaml"
    params:
        z_dim=lambda wc: GENERATORS[wc.generator]["z_dim"],
        resolution=lambda wc: GENERATORS[wc.generator]["resolution"],
    script:
        "../scripts/fit_demo_generator.py"


rule generated_features:
    input:
        network=generator_network,
        weights=inception_weights_path(),
    output:
        features="results/generated/{generator}/features_n{n}_z{z}.npz",
        stats="results/generated/{generator}/stats_n{n}_z{z}.npz",
    log:
        "logs/generated/{generator}_n{n}_z{z}.log",
    benchmark:
        "results/benchmarks/generated/{generator}_n{n}_z{z}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        generation=generation_settings,
        which=lambda wc: GENERATORS[wc.generator]["which"],
        device=config["device"],
        batch_size=config["batch_size"],
        cache="results/cache/features",
    script:
        "../scripts/generated_features.py"
