# Beyond one FID: per-image attribution, bootstrap intervals, FID∞ and precision/recall/density/coverage.
# Thin rules: the steps live in fidlens.studies (attribution_run, metric_tables, fid_infinity_run) and the
# paths in PLAN (fidlens.workflow.beyond_targets). Each section runs only the sets its config names.
# Every rule takes the config's threads: on a 2-core machine a job then waits for the demo's headline
# table (higher priority) instead of taking a core from it.


rule attribution_images:
    input:
        unpack(attribution_image_inputs),
    output:
        ranking=report(
            "<results>/attribution/{set}/ranking.csv",
            caption="../report/attribution_ranking.rst",
            category="5. Beyond one FID",
            subcategory="Attribution: {set}",
            labels={"set": "{set}", "result": "ranking (ΔFID per image)"},
        ),
        summary="<results>/attribution/{set}/attribution.json",
        grid=report(
            "<results>/attribution/{set}/grid.png",
            caption="../report/attribution_grid.rst",
            category="5. Beyond one FID",
            subcategory="Attribution: {set}",
            labels={"set": "{set}", "result": "grid of the images FID dislikes and likes most"},
        ),
    wildcard_constraints:
        set=_one_of(_attribution_labels(generated=False)),
    log:
        "<logs>/attribution/{set}.log",
    benchmark:
        "<benchmarks>/attribution/{set}.tsv"
    threads: config["threads"]
    conda:
        "../envs/data.yaml"
    params:
        attribution=lambda wildcards: PLAN.attribution_params(wildcards.set),
    script:
        "../scripts/attribution_set.py"


rule attribution_generated:
    input:
        unpack(lambda wildcards: PLAN.attribution_inputs(wildcards.set)),
    output:
        ranking=report(
            "<results>/attribution/{set}/ranking.csv",
            caption="../report/attribution_ranking.rst",
            category="5. Beyond one FID",
            subcategory="Attribution: {set}",
            labels={"set": "{set}", "result": "ranking (ΔFID per image)"},
        ),
        summary="<results>/attribution/{set}/attribution.json",
        grid=report(
            "<results>/attribution/{set}/grid.png",
            caption="../report/attribution_grid.rst",
            category="5. Beyond one FID",
            subcategory="Attribution: {set}",
            labels={"set": "{set}", "result": "grid of the images FID dislikes and likes most, with heatmaps"},
        ),
    wildcard_constraints:
        set=_one_of(_attribution_labels(generated=True)),
    log:
        "<logs>/attribution/{set}.log",
    benchmark:
        "<benchmarks>/attribution/{set}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        attribution=lambda wildcards: PLAN.attribution_params(wildcards.set),
    script:
        "../scripts/attribution_generated.py"


rule fid_ci_table:
    input:
        unpack(lambda wildcards: PLAN.beyond_inputs("fid_ci")),
    output:
        report(
            "<results>/tables/fid_ci.csv",
            caption="../report/fid_ci.rst",
            category="5. Beyond one FID",
            subcategory="Error bars",
            labels={"result": "FID and KID with bootstrap intervals"},
        ),
    log:
        "<logs>/tables/fid_ci.log",
    benchmark:
        "<benchmarks>/tables/fid_ci.tsv"
    threads: config["threads"]
    conda:
        "../envs/data.yaml"
    params:
        labels=lambda wildcards: PLAN.beyond_params("fid_ci")["labels"],
        settings=lambda wildcards: PLAN.beyond_params("fid_ci")["settings"],
        covariance=config["covariance"],
        reference_name=lambda wildcards: PLAN.beyond_params("fid_ci")["reference_name"],
    script:
        "../scripts/fid_ci_table.py"


rule fid_vs_inverse_n:
    input:
        unpack(lambda wildcards: PLAN.beyond_inputs("fid_infinity")),
    output:
        figure=report(
            "<results>/figures/fid_vs_inverse_n.png",
            caption="../report/fid_vs_inverse_n.rst",
            category="5. Beyond one FID",
            subcategory="FID∞",
            labels={"result": "FID and KID vs 1/N (FID∞)"},
        ),
        points="<results>/figures/fid_vs_inverse_n.csv",
        fits="<results>/figures/fid_vs_inverse_n.json",
    log:
        "<logs>/figures/fid_vs_inverse_n.log",
    benchmark:
        "<benchmarks>/figures/fid_vs_inverse_n.tsv"
    threads: config["threads"]
    conda:
        "../envs/data.yaml"
    params:
        labels=lambda wildcards: PLAN.beyond_params("fid_infinity")["labels"],
        settings=lambda wildcards: PLAN.beyond_params("fid_infinity")["settings"],
        covariance=config["covariance"],
        reference_name=lambda wildcards: PLAN.beyond_params("fid_infinity")["reference_name"],
    script:
        "../scripts/fid_vs_inverse_n.py"


rule prdc_table:
    input:
        unpack(lambda wildcards: PLAN.beyond_inputs("prdc")),
    output:
        report(
            "<results>/tables/prdc.csv",
            caption="../report/prdc.rst",
            category="5. Beyond one FID",
            subcategory="Precision, recall, density, coverage",
            labels={"result": "precision, recall, density, coverage"},
        ),
    log:
        "<logs>/tables/prdc.log",
    benchmark:
        "<benchmarks>/tables/prdc.tsv"
    threads: config["threads"]
    conda:
        "../envs/data.yaml"
    params:
        labels=lambda wildcards: PLAN.beyond_params("prdc")["labels"],
        settings=lambda wildcards: PLAN.beyond_params("prdc")["settings"],
        covariance=config["covariance"],
        reference_name=lambda wildcards: PLAN.beyond_params("prdc")["reference_name"],
    script:
        "../scripts/prdc_table.py"


rule pairs_control:
    input:
        unpack(lambda wildcards: PLAN.pairs_control_inputs(wildcards.model)),
    output:
        table=report(
            "<results>/pairs/{model}/control_fids.csv",
            caption="../report/pairs_control.rst",
            category="4. Pairs study",
            subcategory="Control feature space",
            labels={"model": "{model}", "result": "Table 2's FIDs in a second feature space"},
        ),
        row="<results>/pairs/{model}/control_row.json",
    log:
        "<logs>/pairs/{model}/control.log",
    benchmark:
        "<benchmarks>/pairs/{model}_control.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        control=lambda wildcards: PLAN.pairs_control_params(wildcards.model),
    script:
        "../scripts/pairs_control.py"
