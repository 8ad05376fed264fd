# Content manifests of the image folders and ZIPs the workflow reads (names, sizes, sha256).
# Jobs that read images declare the manifest as input; common.smk refreshes it while the DAG is
# built, so an image whose bytes change reruns exactly the jobs that read it.


rule image_manifest:
    input:
        lambda wildcards: as_source(PLAN.image_set_path(wildcards.dataset)),
    output:
        "<results>/manifests/{dataset}.json",
    log:
        "<logs>/manifests/{dataset}.log",
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/image_manifest.py"


rule source_manifest:
    input:
        lambda wildcards: as_source(PLAN.source_folder(wildcards.source)),
    output:
        "<results>/manifests/sources/{source}.json",
    log:
        "<logs>/manifests/sources/{source}.log",
    wildcard_constraints:
        source=r"orl|zip-[A-Za-z0-9_.-]+",
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/image_manifest.py"
