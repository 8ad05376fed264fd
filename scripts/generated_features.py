"""Features and statistics of N generated images from one latent seed (cached by content)."""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import (
    ExtractionSettings,
    GenerationSettings,
    compute_generated_features,
    statistics_from_features,
)
from fidlens.workflow.jobs import job


def main(network: str, detector_spec: DetectorSpec, features_out: str, stats_out: str, generation: dict, which: str,
         device: str, batch_size: int, cache: str) -> None:
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    features = compute_generated_features(network, detector, GenerationSettings.from_mapping(generation), which=which,
                                          settings=ExtractionSettings(batch_size=batch_size, cache=cache))
    features.save(features_out)
    statistics_from_features(features, "unbiased").save(stats_out)
    print(f"{features.features.shape[0]} generated images ({features.meta['source']['generator']}) -> {stats_out}")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.network, spec_for_job(snakemake), snakemake.output.features, snakemake.output.stats,
             p.generation, p.which, p.device, p.batch_size, p.cache)
