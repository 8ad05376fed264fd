"""FID sensitivity heatmaps for one seed or a grid of seeds (one figure per job), with the raw numbers.

One seed: ``seedNNNN.png`` + ``seedNNNN.npz`` (the 8×8 map before normalisation, ∂FID/∂f) +
``seedNNNN.json`` (FID with the image, without it, ΔFID, ‖g‖, top classes when logits exist).
A grid: ``grid_….png`` + ``grid_….csv`` (which seed sits in which tile, with its numbers) +
``grid_….npz`` (every tile's raw map).
"""

from pathlib import Path

from fidlens.detectors.features import pick_device
from fidlens.generators.load import load_generator
from fidlens.studies.heatmap import (
    FidSensitivity,
    describe_setup,
    explain_seeds,
    save_heatmap_figure,
    save_heatmap_grid,
)
from fidlens.studies.heatmap_figures import write_grid_raw, write_heatmap_raw
from fidlens.detectors.inception_weights import load_inception
from fidlens.workflow.provenance import record_job_provenance
from fidlens.metrics.stats import Statistics
from fidlens.workflow.jobs import logged


def main(network: str, weights: str, reference: str, generated: str, outputs: dict[str, str], seeds: list[int],
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
            save_heatmap_figure(explanations[0], outputs["figure"], title=f"{G.label} · seed {seeds[0]}",
                                subtitle=subtitle)
            setup = {"seed": seeds[0], "generator": G.label, "weighting": weighting,
                     "reference_images": ref.num_images, "generated_images": gen.num_images,
                     "detector": detector.weights_name, "sampling": sampling}
            write_heatmap_raw(explanations[0], Path(outputs["numbers"]).with_suffix(""), label=f"seed {seeds[0]}",
                              setup=setup)
        else:
            labels = [f"seed {s}" for s in seeds]
            save_heatmap_grid(explanations, labels, *grid, outputs["figure"],
                              title=f"{G.label} · seeds {seeds[0]}–{seeds[-1]}", subtitle=subtitle)
            write_grid_raw(explanations, labels, grid[1], outputs["tiles"], outputs["maps"])
        for seed, ex in zip(seeds, explanations):
            print(f"seed {seed}: FID with this image {ex.fid_with_image:.4f} (ΔFID {ex.delta_fid:+.6f})")


if __name__ == "__main__":
    p = snakemake.params
    main(snakemake.input.network, snakemake.input.weights, snakemake.input.reference, snakemake.input.generated,
         dict(snakemake.output.items()), p.seeds, p.grid, p.sampling, p.which, p.weighting, p.device,
         snakemake.log[0], snakemake.threads)
    record_job_provenance(snakemake)
