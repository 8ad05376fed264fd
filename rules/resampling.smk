# Resampling: learn candidate weights that match the reals in one feature space, measure FID.


rule resample:
    input:
        unpack(resampling_inputs),
    output:
        log=report(
            "results/resampling/{run}/{mode}/log.csv",
            caption="../report/resampling_log.rst",
            category="3. Resampling",
            subcategory="{run}",
            labels={"run": "{run}", "mode": "{mode}"},
        ),
        summary="results/resampling/{run}/{mode}/summary.json",
    log:
        "logs/resampling/{run}/{mode}.log",
    benchmark:
        "results/benchmarks/resampling/{run}_{mode}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        real_images=lambda wc: resampling_params(wc)["real_images"],
        pool_images=lambda wc: resampling_params(wc)["pool_images"],
        pool_labels=lambda wc: resampling_params(wc)["pool_labels"],
        generator=lambda wc: resampling_params(wc)["generator"],
        settings=lambda wc: resampling_params(wc)["settings"],
        clip_weights=lambda wc: resampling_params(wc)["clip_weights"],
        mode=lambda wc: wc.mode,
        detector=Path(inception_weights_path()).name,
        outdir=lambda wc: f"results/resampling/{wc.run}/{wc.mode}",
        device=config["device"],
    script:
        "../scripts/resample.py"
