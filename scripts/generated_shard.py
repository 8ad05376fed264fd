"""One shard of a generated set (latent rows [start, stop) of its RandomState stream): features and float64 moments."""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import ExtractionSettings, GenerationSettings, compute_generated_features
from fidlens.metrics.moments import Moments
from fidlens.workflow.jobs import job


def main(network: str, detector_spec: DetectorSpec, rows: list[int], out: str, moments_out: str, generation: dict,
         which: str, device: str, batch_size: int, cache: str) -> None:
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    start, stop = rows
    features = compute_generated_features(network, detector, GenerationSettings.from_mapping(generation), which=which,
                                          settings=ExtractionSettings(batch_size=batch_size, cache=cache),
                                          shard=(start, stop))
    features.save(out)
    Moments.of(features.features, what=f"features of generated images {start}..{stop - 1}").save(moments_out)
    print(f"generated images [{start}, {stop}) ({features.meta['source']['generator']}) -> {out}")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.network, spec_for_job(snakemake), list(p.rows), snakemake.output.features,
             snakemake.output.moments, p.generation, p.which, p.device, p.batch_size, p.cache)
