# Final tables. fid_table_demo is the demo's headline: HEADLINE_PRIORITY (rules/demo.smk).


rule fid_table_demo:
    input:
        ref_stats=PLAN.stats_path("reference"),
        ref_features=PLAN.features_path("reference"),
        stats=[PLAN.stats_path(name) for name in PLAN.demo_comparison_sets()],
        features=[PLAN.features_path(name) for name in PLAN.demo_comparison_sets()],
    output:
        report(
            "<results>/tables/fid_demo.csv",
            caption="../report/fid_table.rst",
            category="1. Demo: FID vs distortion",
            labels={"result": "FID and KID table"},
        ),
    log:
        "<logs>/tables/fid_demo.log",
    benchmark:
        "<benchmarks>/tables/fid_demo.tsv"
    priority: HEADLINE_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: config["threads"]
    params:
        **PLAN.fid_table_params(),
    script:
        "../scripts/fid_table.py"
