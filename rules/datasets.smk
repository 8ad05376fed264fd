# StyleGAN-format dataset ZIPs built from image folders (or ZIPs), with the recipe recorded in
# their dataset.json (source size, filter, rounding) and said by the job's message, so that
# `snakemake -n` lists how each set of reals will be made (config/paper.yaml: FFHQ-256).


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
        recipe=zip_recipe_message,
    message:
        "Building {output} from {input[0]}, recipe: {params.recipe} (recorded in its dataset.json)"
    script:
        "../scripts/make_zip.py"
