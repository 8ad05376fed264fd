"""Fit the PPCA demo generator to the reference faces (seconds, CPU)."""

from fidlens.generators.ppca import fit_ppca
from fidlens.workflow.jobs import job


def main(images: str, out: str, z_dim: int, resolution: int) -> None:
    model = fit_ppca(images, z_dim=z_dim, resolution=resolution)
    model.save(out)
    print(f"{model.label}: z_dim={model.z_dim}, {model.img_resolution}px, {model.img_channels} channel(s) -> {out}")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input[0], snakemake.output[0], p.z_dim, p.resolution)
