# fidlens: what FID sees. Run: snakemake --cores all --resources gpu=1
import os

from snakemake.utils import min_version

min_version("9.0")


# The demo is the default config. A --configfile replaces it instead of being merged into it
# (Snakemake merges every configfile), so each config runs only what it names.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "demo.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"


# Where this config's files go (results/RUN, logs/RUN): rules write <results>/..., the plan
# (fidlens.workflow.targets) returns the same paths spelt out.
pathvars:
    results=PLAN.results,
    logs=PLAN.logs,
    benchmarks=PLAN.benchmarks,


include: "rules/downloads_common.smk"
include: "rules/assets.smk"
include: "rules/demo.smk"
include: "rules/manifests.smk"
include: "rules/datasets.smk"
include: "rules/features.smk"
include: "rules/generators.smk"
include: "rules/shards.smk"
include: "rules/heatmaps.smk"
include: "rules/resampling.smk"
include: "rules/pairs.smk"
include: "rules/tables.smk"
include: "rules/paper_tables.smk"
include: "rules/figures.smk"
include: "rules/beyond.smk"


rule all:
    input:
        PLAN.all_targets(),
    default_target: True
