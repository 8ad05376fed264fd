# Final figures.


rule plot_fid_vs_distortion:
    input:
        table="<results>/tables/fid_demo.csv",
        images=[PLAN.image_set_path(name) for name in PLAN.demo_comparison_sets()],
    output:
        figure=report(
            "<results>/figures/fid_vs_distortion.png",
            caption="../report/fid_vs_distortion.rst",
            category="1. Demo: FID vs distortion",
            labels={"result": "FID vs distortion figure"},
        ),
        numbers="<results>/figures/fid_vs_distortion.csv",
    log:
        "<logs>/figures/fid_vs_distortion.log",
    priority: HEADLINE_PRIORITY  # the demo's headline chain: rules/demo.smk
    conda:
        "../envs/plot.yaml"
    params:
        **PLAN.figure_params(),
    script:
        "../scripts/plot_fid_vs_distortion.py"
