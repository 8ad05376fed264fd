# Final figures.


rule plot_fid_vs_distortion:
    input:
        table="results/tables/fid_demo.csv",
        images=expand("results/data/{dataset}", dataset=demo_comparison_sets()),
    output:
        "results/figures/fid_vs_distortion.png",
    log:
        "logs/figures/fid_vs_distortion.log",
    conda:
        "../envs/plot.yaml"
    params:
        sample=DEMO["sample_face"],
    script:
        "../scripts/plot_fid_vs_distortion.py"
