# Final tables. fid_table_demo is the demo's headline: HEADLINE_PRIORITY (rules/demo.smk).


rule fid_table_demo:
    input:
        ref_stats="results/stats/reference.npz",
        ref_features="results/features/reference.npz",
        stats=expand("results/stats/{dataset}.npz", dataset=demo_comparison_sets()),
        features=expand("results/features/{dataset}.npz", dataset=demo_comparison_sets()),
    output:
        report(
            "results/tables/fid_demo.csv",
            caption="../report/fid_table.rst",
            category="1. Demo: FID vs distortion",
            labels={"result": "FID and KID table"},
        ),
    log:
        "logs/tables/fid_demo.log",
    benchmark:
        "results/benchmarks/tables/fid_demo.tsv"
    priority: HEADLINE_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: config["threads"]
    params:
        names=demo_comparison_sets(),
        distortions=DEMO["distortions"],
        kid=config["kid"],
    script:
        "../scripts/fid_table.py"
