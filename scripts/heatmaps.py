"""FID sensitivity heatmaps for one seed or a grid of seeds (one figure per job), with the raw numbers.

One seed: ``seedNNNN.png`` + ``seedNNNN.npz`` (the 8×8 map before normalisation, ∂FID/∂f) +
``seedNNNN.json`` (FID with the image, without it, ΔFID, ‖g‖, top classes when logits exist).
A grid: ``grid_….png`` + ``grid_….csv`` (which seed sits in which tile, with its numbers) +
``grid_….npz`` (every tile's raw map). The steps are `fidlens.studies.heatmap_run.render_heatmaps`,
which ``fidlens heatmap`` runs too.
"""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.generators.load import load_generator
from fidlens.generators.sampling import Sampling
from fidlens.metrics.stats import Statistics
from fidlens.studies.heatmap_run import render_heatmaps
from fidlens.workflow.jobs import job


def main(network: str, detector_spec: DetectorSpec, reference: str, generated: str, outputs: dict[str, str],
         seeds: list[int], grid: tuple[int, int] | None, sampling: dict, which: str, weighting: str,
         device: str) -> None:
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    render_heatmaps(detector, Statistics.load(reference), Statistics.load(generated), numbers=seeds,
                    generator=load_generator(network, which=which), outputs=outputs, grid=grid,
                    sampling=Sampling.from_mapping(sampling), weighting=weighting)


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.network, spec_for_job(snakemake), snakemake.input.reference, snakemake.input.generated,
             dict(snakemake.output.items()), p.seeds, p.grid, p.sampling, p.which, p.weighting, p.device)
