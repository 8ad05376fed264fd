# The embedded demo's image sets: ORL faces split by subject, then graded disturbances.


wildcard_constraints:
    split="reference|comparison",
    kind="|".join(DEMO["distortions"]) or "none",
    level=r"\d+",
    dataset=r"[A-Za-z0-9_.-]+",
    generator=r"[A-Za-z0-9_.-]+",
    seed=r"\d+",
    model=r"[A-Za-z0-9_.-]+",
    bad=r"\d+(p\d+)?",
    good=r"\d+(p\d+)?",
    first=r"\d+",
    rows=r"\d+",
    cols=r"\d+",
    n=r"\d+",
    z=r"\d+",
    run=r"[A-Za-z0-9_.-]+",
    mode=r"pre_logits|logits|top_n_N\d+|middle_n_N\d+",


rule demo_split:
    input:
        orl=DEMO["orl_dir"],
    output:
        directory("results/data/{split}"),
    log:
        "logs/demo/split_{split}.log",
    conda:
        "../envs/data.yaml"
    params:
        subjects=lambda wc: DEMO_SPLITS[wc.split],
    script:
        "../scripts/demo_subjects.py"


rule demo_distort:
    input:
        images="results/data/comparison",
    output:
        directory("results/data/{kind}{level}"),
    log:
        "logs/demo/distort_{kind}{level}.log",
    conda:
        "../envs/data.yaml"
    params:
        kind=lambda wc: wc.kind,
        strength=distortion_params,
        seed=DEMO["seed"],
    script:
        "../scripts/distort.py"
