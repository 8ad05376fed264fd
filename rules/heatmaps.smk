# FID sensitivity heatmaps: one figure per seed, and seed grids.
#
# Every configured figure of every generator is drawn by one job (`heatmaps`): on a CPU, loading
# torch, the detector, each generator and its statistics costs more than explaining a few images,
# and a seed shown alone and in a grid is explained once. (One job for all generators keeps one
# rule name for profiles/slurm; heatmaps take seconds each on a GPU.) heatmap_seed and
# heatmap_grid draw any other seed or grid named on the command line.


if PLAN.heatmaps:

    rule heatmaps:
        input:
            networks=lambda wildcards: [PLAN.generator_network(name) for name in PLAN.heatmaps],
            weights=PLAN.weights_path(),
            references=lambda wildcards: [PLAN.heatmap_reference_stats(name) for name in PLAN.heatmaps],
            generated=lambda wildcards: [PLAN.heatmap_generated_stats(name) for name in PLAN.heatmaps],
        output:
            heatmap_figure_files(),
        log:
            "<logs>/heatmaps/figures.log",
        benchmark:
            "<benchmarks>/heatmaps/figures.tsv"
        conda:
            "../envs/torch.yaml"
        threads: config["threads"]
        resources:
            gpu=1,
        params:
            generators=lambda wildcards: PLAN.heatmap_jobs(),
            device=config["device"],
            detector=PLAN.detector_params(),
        script:
            "../scripts/heatmaps.py"

    ruleorder: heatmaps > heatmap_seed
    ruleorder: heatmaps > heatmap_grid


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
