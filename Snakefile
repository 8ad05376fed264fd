# fidlens: what FID sees. Run: snakemake --cores all --resources gpu=1
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/downloads_common.smk"
include: "rules/assets.smk"
include: "rules/demo.smk"
include: "rules/manifests.smk"
include: "rules/datasets.smk"
include: "rules/features.smk"
include: "rules/generators.smk"
include: "rules/heatmaps.smk"
include: "rules/resampling.smk"
include: "rules/pairs.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"


rule all:
    input:
        all_targets(),
    default_target: True
