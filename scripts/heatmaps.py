"""FID sensitivity heatmaps for one seed or a grid of seeds (one figure per job)."""

from fidlens.features import pick_device
from fidlens.generators.load import load_generator
from fidlens.heatmap import (
    FidSensitivity,
    describe_setup,
    explain_seeds,
    save_heatmap_figure,
    save_heatmap_grid,
)
from fidlens.inception_weights import load_inception
from fidlens.provenance import record_job_provenance
from fidlens.stats import Statistics
from fidlens.workflow import logged


def main(network: str, weights: str, reference: str, generated: str, out: str, seeds: list[int],
         grid: tuple[int, int] | None, sampling: dict, which: str, weighting: str, device: str, log: str,
         threads: int) -> None:
    with logged(log, threads):
        detector = load_inception(weights, device=pick_device(device, log=print))
        ref, gen = Statistics.load(reference), Statistics.load(generated)
        sensitivity = FidSensitivity(detector, ref, gen, weighting=weighting)
        G = load_generator(network, which=which).to(sensitivity.device)
        explanations = explain_seeds(sensitivity, G, seeds, **sampling)
        subtitle = describe_setup(sensitivity, ref, gen)
        if grid is None:
            save_heatmap_figure(explanations[0], out, title=f"{G.label} · seed {seeds[0]}", subtitle=subtitle)
        else:
            save_heatmap_grid(explanations, [f"seed {s}" for s in seeds], *grid, out,
                              title=f"{G.label} · seeds {seeds[0]}–{seeds[-1]}", subtitle=subtitle)
        for seed, ex in zip(seeds, explanations):
            print(f"seed {seed}: FID with this image {ex.fid_with_image:.4f}")


if __name__ == "__main__":
    p = snakemake.params
    main(snakemake.input.network, snakemake.input.weights, snakemake.input.reference, snakemake.input.generated,
         snakemake.output[0], p.seeds, p.grid, p.sampling, p.which, p.weighting, p.device, snakemake.log[0],
         snakemake.threads)
    record_job_provenance(snakemake)
