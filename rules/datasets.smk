# StyleGAN-format dataset ZIPs built from image folders, with the resize filter recorded.


rule make_zip:
    input:
        lambda wildcards: as_source(PLAN.source_folder(f"zip-{wildcards.name}")),
        manifest=lambda wildcards: source_manifest(f"zip-{wildcards.name}"),
    output:
        "<results>/zips/{name}.zip",
    log:
        "<logs>/zips/{name}.log",
    conda:
        "../envs/data.yaml"
    params:
        options=lambda wildcards: PLAN.zip_options(wildcards.name),
    script:
        "../scripts/make_zip.py"
