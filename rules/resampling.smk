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
        real_label=resampling_param("real_label"),  # the reals' set name, for titles
        pool_images=resampling_param("pool_images"),
        pool_labels=resampling_param("pool_labels"),
        generator=resampling_param("generator"),
        settings=resampling_param("settings"),
        control=resampling_param("control"),  # the control detector {name, weights, label}, or None
        mode=resampling_param("mode"),
        detector=resampling_param("detector"),  # the weights' file name: the features come from files
        outdir=resampling_param("outdir"),
        device=resampling_param("device"),
        published=resampling_param("published"),  # the mode's published values, or None
    script:
        "../scripts/resample.py"


# A generated pool read by runs with a control detector (CLIP, pixels, ...): generated once, batched
# on the job's device, each batch measured by the run's detector (Inception) and by the control
# (both from the detector registry); every mode's resample job reads the two files. Without a
# control the pool's Inception features come from generated_features (rules/generators.smk), one
# pass as well. Rows are latent rows of
# RandomState(z): a shard of rows start..stop is the same stream's slice
# (fidlens.studies.resampling.pool_features), so a sharded variant only adds a join.
rule generated_pool:
    input:
        network=lambda wildcards: PLAN.generator_network(wildcards.generator),
        weights=PLAN.weights_path(),
        control_weights=lambda wildcards: PLAN.control_weights_files(
            PLAN.generated_pool_params(wildcards.generator, wildcards.n, wildcards.z)["detectors"]["control"]
        ),
    output:
        inception="<results>/resampling/pools/{generator}_n{n}_z{z}/inception.npz",
        control="<results>/resampling/pools/{generator}_n{n}_z{z}/control.npz",
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


# The control detector's features of every image set the runs read (the reals; the sets of an
# image pool): one job for all, so the detector is loaded once and no job starts per set (the
# demo's pixels: about 4 s for five sets). Each file is made once and read by every mode.
if PLAN.control_feature_jobs():

    rule control_features:
        input:
            images=lambda wildcards: [
                job["source"] if job["detector"]["name"] == "precomputed" else as_source(job["source"])
                for job in PLAN.control_feature_jobs()
            ],
            manifests=lambda wildcards: [
                image_manifest(job["dataset"])
                for job in PLAN.control_feature_jobs()
                if job["detector"]["name"] != "precomputed"
            ],
            weights=lambda wildcards: sorted(
                {w for job in PLAN.control_feature_jobs() for w in PLAN.control_weights_files(job["detector"])}
            ),
        output:
            [job["out"] for job in PLAN.control_feature_jobs()],
        log:
            "<logs>/resampling/control_features.log",
        benchmark:
            "<benchmarks>/resampling/control_features.tsv"
        conda:
            "../envs/torch.yaml"
        threads: config["threads"]
        resources:
            gpu=1,
        params:
            jobs=PLAN.control_feature_jobs(),
            device=config["device"],
            batch_size=config["batch_size"],
            workers=config["workers"],
            cache=PLAN.feature_cache,
        script:
            "../scripts/control_features.py"
