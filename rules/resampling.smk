# Resampling: learn candidate weights that match the reals in one feature space, measure FID.


rule resample:
    input:
        unpack(lambda wildcards: PLAN.resampling_job(wildcards.run, wildcards.mode).inputs),
    output:
        log=report(
            "<results>/resampling/{run}/{mode}/log.csv",
            caption="../report/resampling_log.rst",
            category="3. Resampling",
            subcategory="{run}",
            labels={"run": "{run}", "mode": "{mode}"},
        ),
        summary="<results>/resampling/{run}/{mode}/summary.json",
    log:
        "<logs>/resampling/{run}/{mode}.log",
    benchmark:
        "<benchmarks>/resampling/{run}_{mode}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        real_images=resampling_param("real_images"),
        pool_images=resampling_param("pool_images"),
        pool_labels=resampling_param("pool_labels"),
        generator=resampling_param("generator"),
        settings=resampling_param("settings"),
        clip_weights=resampling_param("clip_weights"),
        mode=resampling_param("mode"),
        detector=resampling_param("detector"),  # the weights' file name: the features come from files
        outdir=resampling_param("outdir"),
        device=resampling_param("device"),
        published=resampling_param("published"),  # the mode's published values, or None
    script:
        "../scripts/resample.py"


# A generated pool read by runs with CLIP-FID: generated once, batched on the job's device, each
# batch measured by the run's detector (Inception) and by CLIP (both from the detector registry);
# every mode's resample job reads the two files. Without CLIP the pool's Inception features come
# from generated_features (rules/generators.smk), one pass as well. Rows are latent rows of
# RandomState(z): a shard of rows start..stop is the same stream's slice
# (fidlens.studies.resampling.pool_features), so a sharded variant only adds a join.
rule generated_pool:
    input:
        network=lambda wildcards: PLAN.generator_network(wildcards.generator),
        weights=PLAN.weights_path(),
        clip=lambda wildcards: PLAN.generated_pool_params(wildcards.generator, wildcards.n, wildcards.z)[
            "detectors"
        ]["clip"]["weights"],
    output:
        inception="<results>/resampling/pools/{generator}_n{n}_z{z}/inception.npz",
        clip="<results>/resampling/pools/{generator}_n{n}_z{z}/clip.npz",
    log:
        "<logs>/resampling/pools/{generator}_n{n}_z{z}.log",
    benchmark:
        "<benchmarks>/resampling/pool_{generator}_n{n}_z{z}.tsv"
    wildcard_constraints:
        n=r"\d+",
        z=r"\d+",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        pool=lambda wildcards: PLAN.generated_pool_params(wildcards.generator, wildcards.n, wildcards.z),
    script:
        "../scripts/generated_pool.py"


# CLIP embeddings of an image set (the reals; the sets of an image pool), once for every mode.
rule clip_features:
    input:
        images=lambda wildcards: as_source(PLAN.image_set_path(wildcards.dataset)),
        manifest=lambda wildcards: image_manifest(wildcards.dataset),
        weights=lambda wildcards: PLAN.resampling_clip_weights(dataset=wildcards.dataset),
    output:
        "<results>/resampling/clip/{dataset}.npz",
    log:
        "<logs>/resampling/clip/{dataset}.log",
    benchmark:
        "<benchmarks>/resampling/clip_{dataset}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        detector=lambda wildcards: {"name": "clip", "weights": PLAN.resampling_clip_weights(dataset=wildcards.dataset)},
        device=config["device"],
        batch_size=config["batch_size"],
        workers=config["workers"],
        max_images=lambda wildcards: PLAN.max_images(wildcards.dataset),
        cache=PLAN.feature_cache,
    script:
        "../scripts/clip_features.py"
