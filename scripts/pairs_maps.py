"""Every pair's attention maps (absolute weighting) in one job, and their index.

`fidlens.studies.pairs.map_run.render_pair_maps` draws each pair into MAPS/ (figure, strict-JSON
numbers, both raw 8×8 maps on their shared scale); `write_maps_index` lists them with their FIDs.
"""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.generators.load import load_generator
from fidlens.generators.sampling import Sampling
from fidlens.studies.pairs.map_run import map_statistics, render_pair_maps, statistics_sizes
from fidlens.studies.pairs.maps_index import write_maps_index
from fidlens.studies.pairs.spec import load_pairs
from fidlens.workflow.jobs import job


def main(network: str, detector_spec: DetectorSpec, pairs: str, study: str, reference_features: str, maps: str,
         markdown: str, csv: str, settings: dict) -> None:
    """SETTINGS: `Plan.pair_map_params` (sampling, device, and the sizes `map_statistics` takes)."""
    chosen = load_pairs(pairs)
    reference, generated = map_statistics(study, reference_features, **statistics_sizes(settings))
    detector = load_detector(detector_spec, device=pick_device(settings["device"], log=print))
    figures = render_pair_maps(detector, reference, generated, load_generator(network, which=settings["which"]),
                               chosen, maps, sampling=Sampling.from_mapping(settings["sampling"]))
    print(write_maps_index(figures, markdown, csv))


if __name__ == "__main__":
    i, o, p = snakemake.input, snakemake.output, snakemake.params
    with job(snakemake):
        main(i.network, spec_for_job(snakemake), i.pairs, i.study, i.reference, o.maps, o.markdown, o.csv, p.maps)
