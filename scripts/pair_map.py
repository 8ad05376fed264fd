"""One pair's attention maps (absolute weighting) and the FID change of swapping bad for good.

Writes the figure, its numbers (strict JSON) and both raw 8×8 maps with their shared scale (.npz):
`fidlens.studies.pairs.map_run.render_pair_map`.
"""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.generators.load import load_generator
from fidlens.generators.sampling import Sampling
from fidlens.studies.pairs.map_run import map_statistics, pair_named, render_pair_map, statistics_sizes
from fidlens.studies.pairs.spec import load_pairs
from fidlens.workflow.jobs import job


def main(network: str, detector_spec: DetectorSpec, pairs: str, study: str, reference_features: str, figure: str,
         numbers: str, maps: str, stem: str, settings: dict) -> None:
    """SETTINGS: `Plan.pair_map_params`, as the pairs_maps job gets them."""
    chosen = load_pairs(pairs)
    pair = pair_named(chosen, stem, pairs)
    reference, generated = map_statistics(study, reference_features, **statistics_sizes(settings))
    detector = load_detector(detector_spec, device=pick_device(settings["device"], log=print))
    render_pair_map(detector, reference, generated, load_generator(network, which=settings["which"]), chosen, pair,
                    figure=figure, numbers=numbers, maps=maps, sampling=Sampling.from_mapping(settings["sampling"]))


if __name__ == "__main__":
    i, o, p, wc = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
    with job(snakemake):
        main(i.network, spec_for_job(snakemake), i.pairs, i.study, i.reference, o.figure, o.numbers, o.maps,
             f"pair_{wc.bad}_{wc.good}", p.maps)
