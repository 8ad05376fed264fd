"""FID sensitivity heatmaps: one seed or one grid named on the command line, or every configured
figure of every generator in one job (the detector loaded once; per generator, its network and
statistics once), each with its raw numbers.

One seed: ``seedNNNN.png`` + ``seedNNNN.npz`` (the 8×8 map before normalisation, ∂FID/∂f) +
``seedNNNN.json`` (FID with the image, without it, ΔFID, ‖g‖, top classes when logits exist).
A grid: ``grid_….png`` + ``grid_….csv`` (which seed sits in which tile, with its numbers) +
``grid_….npz`` (every tile's raw map). The steps are `fidlens.studies.heatmap_run`, which
``fidlens heatmap`` runs too.
"""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.generators.load import load_generator
from fidlens.generators.sampling import Sampling
from fidlens.metrics.stats import Statistics
from fidlens.studies.heatmap_run import HeatmapFigure, render_heatmap_figures
from fidlens.workflow.jobs import job


def main(detector_spec: DetectorSpec, device: str, generators: list[dict]) -> None:
    """GENERATORS: per generator, its network, statistics, sampling, weighting and figures."""
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    for spec in generators:
        render_heatmap_figures(detector, Statistics.load(spec["reference"]), Statistics.load(spec["generated"]),
                               [HeatmapFigure.from_mapping(figure) for figure in spec["figures"]],
                               generator=load_generator(spec["network"], which=spec["which"]),
                               sampling=Sampling.from_mapping(spec["sampling"]), weighting=spec["weighting"])


def one_figure(network: str, reference: str, generated: str, params, outputs: dict[str, str]) -> dict:
    """The job of heatmap_seed / heatmap_grid (one figure, its files named by the rule) in `main`'s form."""
    figure = {"seeds": params.seeds, "grid": params.grid, "outputs": outputs}
    return {"network": network, "reference": reference, "generated": generated, "figures": [figure],
            "sampling": params.sampling, "which": params.which, "weighting": params.weighting}


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        if "generators" in p.keys():
            generators = p.generators
        else:
            i = snakemake.input
            generators = [one_figure(i.network, i.reference, i.generated, p, dict(snakemake.output.items()))]
        main(spec_for_job(snakemake), p.device, generators)
