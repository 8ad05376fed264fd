# The embedded demo's image sets: ORL faces split by subject, then graded disturbances.

# The demo's headline (<results>/tables/fid_demo.csv and <results>/figures/fid_vs_distortion.png)
# comes first. Snakemake applies a rule's `priority:` to that rule's own jobs only, so every
# rule upstream of the table carries it too: demo_split, demo_distort, image_manifest,
# features, statistics, fid_table_demo, and plot_fid_vs_distortion after it. Jobs that only
# feed heatmaps, resampling and pairs stay at 0 and run once the headline is written.
# (--prioritize would raise the whole chain by itself, but Snakemake also adds its files to
# the targets of every run.) Defined here, in the first rule file that uses it.
HEADLINE_PRIORITY = 10


wildcard_constraints:
    split="reference|comparison",
    kind="|".join(PLAN.demo["distortions"]) or "none",
    level=r"\d+",
    dataset=r"[A-Za-z0-9_.-]+",
    generator=r"[A-Za-z0-9_.-]+",
    seed=r"\d+",
    model=r"[A-Za-z0-9_.-]+",
    bad=r"\d+(p\d+)?",
    good=r"\d+(p\d+)?",
    first=r"\d+",
    rows=r"\d+",
    cols=r"\d+",
    n=r"\d+",
    z=r"\d+",
    run=r"[A-Za-z0-9_.-]+",
    mode=r"pre_logits|logits|top_n_N\d+|middle_n_N\d+",


rule demo_split:
    input:
        orl=lambda wildcards: as_source(PLAN.source_folder("orl")),
        manifest=lambda wildcards: source_manifest("orl"),
    output:
        directory("<results>/data/{split}"),
    log:
        "<logs>/data/split_{split}.log",
    priority: HEADLINE_PRIORITY  # upstream of the demo's FID table: see rules/tables.smk
    conda:
        "../envs/data.yaml"
    params:
        subjects=lambda wildcards: PLAN.demo_subjects(wildcards.split),
    script:
        "../scripts/demo_subjects.py"


rule demo_distort:
    input:
        images=PLAN.image_set_path("comparison"),
        manifest=lambda wildcards: image_manifest("comparison"),
    output:
        directory("<results>/data/{kind}{level}"),
    log:
        "<logs>/data/distort_{kind}{level}.log",
    priority: HEADLINE_PRIORITY
    conda:
        "../envs/data.yaml"
    params:
        kind=lambda wildcards: wildcards.kind,
        strength=lambda wildcards: PLAN.distortion_strength(wildcards.kind, wildcards.level),
        seed=PLAN.demo["seed"],
    script:
        "../scripts/distort.py"


# All the headline sets in one job: on a CPU, loading torch and the detector costs about as much
# as featurising a 100-image set, so eight jobs spent half their time starting. Each file is the
# one the `features` rule would write (same code, same batches, same cache entry), so naming
# one of them still works; it brings its siblings along.
if PLAN.demo_feature_sets():

    rule demo_features:
        input:
            images=lambda wildcards: [as_source(PLAN.image_set_path(name)) for name in PLAN.demo_feature_sets()],
            manifests=lambda wildcards: [image_manifest(name) for name in PLAN.demo_feature_sets()],
            weights=PLAN.weights_path(),
        output:
            [PLAN.features_path(name) for name in PLAN.demo_feature_sets()],
        log:
            "<logs>/features/demo_sets.log",
        benchmark:
            "<benchmarks>/features/demo_sets.tsv"
        priority: HEADLINE_PRIORITY
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
            max_images=[PLAN.max_images(name) for name in PLAN.demo_feature_sets()],
            cache=PLAN.feature_cache,
        script:
            "../scripts/features.py"


    ruleorder: demo_features > features
