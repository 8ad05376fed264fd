"""Features and statistics of N generated images from one latent seed (cached by content)."""

from fidlens.detectors.features import pick_device
from fidlens.detectors.inception_weights import load_inception
from fidlens.extraction.pipeline import (
    ExtractionSettings,
    GenerationSettings,
    compute_generated_features,
    statistics_from_features,
)
from fidlens.workflow.jobs import logged


def main(network: str, weights: str, features_out: str, stats_out: str, generation: dict, which: str,
         device: str, batch_size: int, cache: str, log: str, threads: int) -> None:
    with logged(log, threads):
        detector = load_inception(weights, device=pick_device(device, log=print))
        features = compute_generated_features(network, detector, GenerationSettings(**generation), which=which,
                                              settings=ExtractionSettings(batch_size=batch_size, cache=cache))
        features.save(features_out)
        statistics_from_features(features, "unbiased").save(stats_out)
        print(f"{features.pool3.shape[0]} generated images ({features.meta['source']['generator']}) -> {stats_out}")


if __name__ == "__main__":
    p = snakemake.params
    main(snakemake.input.network, snakemake.input.weights, snakemake.output.features, snakemake.output.stats,
         p.generation, p.which, p.device, p.batch_size, p.cache, snakemake.log[0], snakemake.threads)
