# The pairs study's Table 1 (pairs per model, ours beside the published count) next to Table 2,
# and its Fig. 4 (selected bad images above their w′ replacements), from the study's outputs.
# Targets where the config asks for them: pairs.NAME.published.pairs, pairs.NAME.figure4.


rule pairs_table1:
    input:
        expand("<results>/pairs/{model}/pairs.yaml", model=list(PLAN.pairs)),
    output:
        csv=report(
            "<results>/tables/pairs_table1.csv",
            caption="../report/pairs_table1.rst",
            category="4. Pairs study",
            subcategory="Table 1",
            labels={"result": "Table 1", "format": "CSV"},
        ),
        markdown=report(
            "<results>/tables/pairs_table1.md",
            caption="../report/pairs_table1.rst",
            category="4. Pairs study",
            subcategory="Table 1",
            labels={"result": "Table 1", "format": "Markdown"},
        ),
    log:
        "<logs>/tables/pairs_table1.log",
    conda:
        "../envs/data.yaml"
    params:
        **PLAN.pairs_table1_params(),
    script:
        "../scripts/pairs_table1.py"


rule pairs_figure4:
    input:
        network=lambda wildcards: PLAN.pairs_generator_network(wildcards.model),
        study="<results>/pairs/{model}/study.npz",
    output:
        figure=report(
            "<results>/pairs/{model}/figure4.png",
            caption="../report/pairs_figure4.rst",
            category="4. Pairs study",
            subcategory="Fig. 4: {model}",
            labels={"model": "{model}", "result": "Fig. 4"},
        ),
        table="<results>/pairs/{model}/figure4.csv",
    log:
        "<logs>/pairs/{model}/figure4.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        images=lambda wildcards: PLAN.pairs_study(wildcards.model)["figure4"],
        which=lambda wildcards: PLAN.pairs_which(wildcards.model),
        device=config["device"],
    script:
        "../scripts/pairs_figure4.py"
