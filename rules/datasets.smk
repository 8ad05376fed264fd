# StyleGAN-format dataset ZIPs built from image folders, with the resize filter recorded.


rule make_zip:
    input:
        lambda wildcards: as_source(zip_source(wildcards)),
        manifest=zip_source_manifest,
    output:
        "results/zips/{name}.zip",
    log:
        "logs/zips/{name}.log",
    conda:
        "../envs/data.yaml"
    params:
        options=zip_options,
    script:
        "../scripts/make_zip.py"
