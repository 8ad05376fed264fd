# FID sensitivity heatmaps: one figure per seed, and seed grids.


rule heatmap_seed:
    input:
        network=lambda wildcards: PLAN.generator_network(wildcards.generator),
        weights=PLAN.weights_path(),
        reference=lambda wildcards: PLAN.heatmap_reference_stats(wildcards.generator),
        generated=lambda wildcards: PLAN.heatmap_generated_stats(wildcards.generator),
    output:
        figure=report(
            "<results>/heatmaps/{generator}/seed{seed}.png",
            caption="../report/heatmap_seed.rst",
            category="2. FID sensitivity heatmaps",
            subcategory="{generator}",
            labels={"generator": "{generator}", "figure": "seed {seed}"},
        ),
        maps="<results>/heatmaps/{generator}/seed{seed}.npz",
        numbers="<results>/heatmaps/{generator}/seed{seed}.json",
    log:
        "<logs>/heatmaps/{generator}/seed{seed}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        seeds=lambda wildcards: [int(wildcards.seed)],
        grid=None,
        sampling=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["sampling"],
        which=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["which"],
        weighting=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["weighting"],
        device=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["device"],
        detector=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["detector"],
    script:
        "../scripts/heatmaps.py"


rule heatmap_grid:
    input:
        network=lambda wildcards: PLAN.generator_network(wildcards.generator),
        weights=PLAN.weights_path(),
        reference=lambda wildcards: PLAN.heatmap_reference_stats(wildcards.generator),
        generated=lambda wildcards: PLAN.heatmap_generated_stats(wildcards.generator),
    output:
        figure=report(
            "<results>/heatmaps/{generator}/grid_{first}_{rows}x{cols}.png",
            caption="../report/heatmap_grid.rst",
            category="2. FID sensitivity heatmaps",
            subcategory="{generator}",
            labels={"generator": "{generator}", "figure": "grid of {rows}x{cols} from seed {first}"},
        ),
        tiles="<results>/heatmaps/{generator}/grid_{first}_{rows}x{cols}.csv",
        maps="<results>/heatmaps/{generator}/grid_{first}_{rows}x{cols}.npz",
    log:
        "<logs>/heatmaps/{generator}/grid_{first}_{rows}x{cols}.log",
    benchmark:
        "<benchmarks>/heatmaps/{generator}_grid_{first}_{rows}x{cols}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        seeds=lambda wildcards: grid_seeds(wildcards.first, wildcards.rows, wildcards.cols),
        grid=lambda wildcards: (int(wildcards.rows), int(wildcards.cols)),
        sampling=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["sampling"],
        which=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["which"],
        weighting=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["weighting"],
        device=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["device"],
        detector=lambda wildcards: PLAN.heatmap_params(wildcards.generator)["detector"],
    script:
        "../scripts/heatmaps.py"
