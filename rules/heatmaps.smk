# FID sensitivity heatmaps: one figure per seed, and seed grids.


rule heatmap_seed:
    input:
        network=generator_network,
        weights=inception_weights_path(),
        reference=heatmap_reference_stats,
        generated=generated_stats,
    output:
        figure=report(
            "results/heatmaps/{generator}/seed{seed}.png",
            caption="../report/heatmap_seed.rst",
            category="2. FID sensitivity heatmaps",
            subcategory="{generator}",
            labels={"generator": "{generator}", "figure": "seed {seed}"},
        ),
        maps="results/heatmaps/{generator}/seed{seed}.npz",
        numbers="results/heatmaps/{generator}/seed{seed}.json",
    log:
        "logs/heatmaps/{generator}/seed{seed}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        seeds=lambda wc: [int(wc.seed)],
        grid=None,
        sampling=sampling_settings,
        which=lambda wc: GENERATORS[wc.generator]["which"],
        weighting=lambda wc: HEATMAPS[wc.generator]["weighting"],
        device=config["device"],
    script:
        "../scripts/heatmaps.py"


rule heatmap_grid:
    input:
        network=generator_network,
        weights=inception_weights_path(),
        reference=heatmap_reference_stats,
        generated=generated_stats,
    output:
        figure=report(
            "results/heatmaps/{generator}/grid_{first}_{rows}x{cols}.png",
            caption="../report/heatmap_grid.rst",
            category="2. FID sensitivity heatmaps",
            subcategory="{generator}",
            labels={"generator": "{generator}", "figure": "grid of {rows}x{cols} from seed {first}"},
        ),
        tiles="results/heatmaps/{generator}/grid_{first}_{rows}x{cols}.csv",
        maps="results/heatmaps/{generator}/grid_{first}_{rows}x{cols}.npz",
    log:
        "logs/heatmaps/{generator}/grid_{first}_{rows}x{cols}.log",
    benchmark:
        "results/benchmarks/heatmaps/{generator}_grid_{first}_{rows}x{cols}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        seeds=lambda wc: list(range(int(wc.first), int(wc.first) + int(wc.rows) * int(wc.cols))),
        grid=lambda wc: (int(wc.rows), int(wc.cols)),
        sampling=sampling_settings,
        which=lambda wc: GENERATORS[wc.generator]["which"],
        weighting=lambda wc: HEATMAPS[wc.generator]["weighting"],
        device=config["device"],
    script:
        "../scripts/heatmaps.py"
