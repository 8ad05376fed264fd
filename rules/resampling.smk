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
