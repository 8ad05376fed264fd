# Sharded extraction (config shard_size): one GPU job per shard of a dataset or generated set,
# then one merge job that writes the same features and statistics files as the unsharded rules
# (features, statistics, generated_features), statistics from the shards' merged float64 moments.
# Only sets whose shard_size is set match these rules (wildcard_constraints from the plan); the
# ruleorder lines then prefer the merge. An unsharded config matches none of them: its DAG is
# unchanged. Shard counts come from the plan (fidlens.workflow.targets) while the DAG is built.


ruleorder: merge_feature_shards > features
ruleorder: merge_feature_shards > statistics
ruleorder: merge_generated_shards > generated_features


# The sharded plan (jobs, per-job minutes and memory; fidlens.workflow.shard_plan) on stderr,
# once, where Snakemake was started (not again in every job it submits).
if workflow.is_main_process and (PLAN.sharded_names("datasets") or PLAN.sharded_names("generators")):
    from fidlens.workflow.shard_plan import format_shard_plan, read_costs

    print(format_shard_plan(PLAN, read_costs(os.path.join(workflow.basedir, "benchmarks", "records"))), file=sys.stderr)


rule feature_shard:
    input:
        images=lambda wildcards: as_source(PLAN.image_set_path(wildcards.dataset)),
        manifest=lambda wildcards: image_manifest(wildcards.dataset),
        weights=PLAN.weights_path(),
    output:
        features="<results>/shards/datasets/{dataset}/shard{shard}.npz",
        moments="<results>/shards/datasets/{dataset}/shard{shard}.moments.npz",
    log:
        "<logs>/shards/datasets/{dataset}/shard{shard}.log",
    benchmark:
        "<benchmarks>/shards/datasets/{dataset}/shard{shard}.tsv"
    wildcard_constraints:
        dataset=PLAN.shard_pattern("datasets"),
        shard=r"\d\d\d\d+",
    message:
        "{wildcards.dataset}: feature shard {wildcards.shard}, images {params.rows}"
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
        max_images=lambda wildcards: PLAN.max_images(wildcards.dataset),
        cache=PLAN.feature_cache,
        rows=lambda wildcards: PLAN.dataset_shard_rows(wildcards.dataset, wildcards.shard),
    script:
        "../scripts/feature_shard.py"


rule merge_feature_shards:
    input:
        unpack(lambda wildcards: PLAN.dataset_shard_files(wildcards.dataset)),
        images=lambda wildcards: as_source(PLAN.image_set_path(wildcards.dataset)),
        manifest=lambda wildcards: image_manifest(wildcards.dataset),
    output:
        features="<results>/features/{dataset}.npz",
        stats="<results>/stats/{dataset}.npz",
    log:
        "<logs>/shards/datasets/{dataset}/merge.log",
    wildcard_constraints:
        dataset=PLAN.shard_pattern("datasets"),
    conda:
        "../envs/data.yaml"
    params:
        covariance=config["covariance"],
        max_images=lambda wildcards: PLAN.max_images(wildcards.dataset),
    script:
        "../scripts/merge_shards.py"


rule generated_shard:
    input:
        network=lambda wildcards: PLAN.generator_network(wildcards.generator),
        weights=PLAN.weights_path(),
    output:
        features="<results>/shards/generated/{generator}/n{n}_z{z}/shard{shard}.npz",
        moments="<results>/shards/generated/{generator}/n{n}_z{z}/shard{shard}.moments.npz",
    log:
        "<logs>/shards/generated/{generator}/n{n}_z{z}/shard{shard}.log",
    benchmark:
        "<benchmarks>/shards/generated/{generator}/n{n}_z{z}/shard{shard}.tsv"
    wildcard_constraints:
        generator=PLAN.shard_pattern("generators"),
        n=r"\d+",
        z=r"\d+",
        shard=r"\d\d\d\d+",
    message:
        "{wildcards.generator} n{wildcards.n} z{wildcards.z}: generated shard {wildcards.shard}, latent rows {params.rows}"
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
        rows=lambda wildcards: PLAN.generated_shard_rows(wildcards.generator, wildcards.n, wildcards.shard),
    script:
        "../scripts/generated_shard.py"


rule merge_generated_shards:
    input:
        unpack(lambda wildcards: PLAN.generated_shard_files(wildcards.generator, wildcards.n, wildcards.z)),
    output:
        features="<results>/generated/{generator}/features_n{n}_z{z}.npz",
        stats="<results>/generated/{generator}/stats_n{n}_z{z}.npz",
    log:
        "<logs>/shards/generated/{generator}/n{n}_z{z}/merge.log",
    wildcard_constraints:
        generator=PLAN.shard_pattern("generators"),
        n=r"\d+",
        z=r"\d+",
    conda:
        "../envs/data.yaml"
    params:
        covariance="unbiased",  # as generated_features writes them
        max_images=None,
    script:
        "../scripts/merge_shards.py"
