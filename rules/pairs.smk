# The good/bad pairs study: pairs file, study (selection, replacement), Table 2, pair maps.


checkpoint pairs_file:
    input:
        unpack(lambda wildcards: PLAN.pairs_file_inputs(wildcards.model)),
    output:
        "<results>/pairs/{model}/pairs.yaml",
    log:
        "<logs>/pairs/{model}/pairs_file.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        auto=lambda wildcards: PLAN.pairs_study(wildcards.model)["auto"],
        sampling=lambda wildcards: PLAN.pairs_sampling(wildcards.model),
        which=lambda wildcards: PLAN.pairs_which(wildcards.model),
        device=config["device"],
    script:
        "../scripts/pairs_file.py"


rule pairs_study:
    input:
        network=lambda wildcards: PLAN.pairs_generator_network(wildcards.model),
        weights=PLAN.weights_path(),
        pairs="<results>/pairs/{model}/pairs.yaml",
    output:
        study="<results>/pairs/{model}/study.npz",
        selection="<results>/pairs/{model}/selection.csv",
        generated="<results>/pairs/{model}/generated_stats.npz",
    log:
        "<logs>/pairs/{model}/study.log",
    benchmark:
        "<benchmarks>/pairs/{model}_study.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        detector=PLAN.detector_params(),
        settings=lambda wildcards: PLAN.pairs_study_settings(wildcards.model),
        face_detector=lambda wildcards: PLAN.pairs_study(wildcards.model)["face_detector"],
        which=lambda wildcards: PLAN.pairs_which(wildcards.model),
        device=config["device"],
    script:
        "../scripts/pairs_study.py"


rule pairs_fids:
    input:
        study="<results>/pairs/{model}/study.npz",
        reference=lambda wildcards: PLAN.pairs_reference_stats(wildcards.model),
    output:
        "<results>/pairs/{model}/table2_row.json",
    log:
        "<logs>/pairs/{model}/fids.log",
    conda:
        "../envs/data.yaml"
    threads: config["threads"]
    params:
        covariance=config["covariance"],
    script:
        "../scripts/pairs_fids.py"


rule pairs_table:
    input:
        expand("<results>/pairs/{model}/table2_row.json", model=list(PLAN.pairs)),
    output:
        csv=report(
            "<results>/tables/pairs_table2.csv",
            caption="../report/pairs_table.rst",
            category="4. Pairs study",
            subcategory="Table 2",
            labels={"result": "Table 2", "format": "CSV"},
        ),
        markdown=report(
            "<results>/tables/pairs_table2.md",
            caption="../report/pairs_table.rst",
            category="4. Pairs study",
            subcategory="Table 2",
            labels={"result": "Table 2", "format": "Markdown"},
        ),
    log:
        "<logs>/tables/pairs_table2.log",
    conda:
        "../envs/data.yaml"
    params:
        **PLAN.pairs_table_params(),
    script:
        "../scripts/pairs_table.py"


rule pairs_maps:
    input:
        unpack(lambda wildcards: PLAN.pair_map_inputs(wildcards.model)),
    output:
        markdown="<results>/pairs/{model}/maps.md",
        csv="<results>/pairs/{model}/maps.csv",
        maps=report(
            directory("<results>/pairs/{model}/maps"),
            patterns=["{stem}.png"],
            caption="../report/pair_map.rst",
            category="4. Pairs study",
            subcategory="Pair maps: {model}",
            labels={"model": "{model}", "pair": "{stem}"},
        ),
    log:
        "<logs>/pairs/{model}/maps.log",
    benchmark:
        "<benchmarks>/pairs/{model}_maps.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        detector=PLAN.detector_params(),
        maps=lambda wildcards: PLAN.pair_map_params(wildcards.model),  # sampling, device, statistics' sizes
    script:
        "../scripts/pairs_maps.py"


# One pair's map on its own, beside the maps/ folder: `snakemake results/RUN/pairs/MODEL/pair_BAD_GOOD.png`.
rule pair_map:
    input:
        unpack(lambda wildcards: PLAN.pair_map_inputs(wildcards.model)),
    output:
        figure="<results>/pairs/{model}/pair_{bad}_{good}.png",
        numbers="<results>/pairs/{model}/pair_{bad}_{good}.json",
        maps="<results>/pairs/{model}/pair_{bad}_{good}.npz",
    log:
        "<logs>/pairs/{model}/pair_{bad}_{good}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        detector=PLAN.detector_params(),
        maps=lambda wildcards: PLAN.pair_map_params(wildcards.model),  # sampling, device, statistics' sizes
    script:
        "../scripts/pair_map.py"


localrules:
    place_pairs,


rule place_pairs:
    output:
        "resources/pairs/{model}.yaml",
    log:
        "<logs>/pairs/{model}/place_pairs.log",
    conda:
        "../envs/data.yaml"
    params:
        network=lambda wildcards: PLAN.pairs_generator_network(wildcards.model),
    message:
        "Cannot make {output}: pairs are chosen by people (fidlens probe); see the log for how."
    script:
        "../scripts/place_pairs.py"
