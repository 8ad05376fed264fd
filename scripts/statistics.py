"""FID statistics (float64 mu, sigma + provenance) from a feature file."""

from fidlens.extraction.pipeline import statistics_from_features
from fidlens.metrics.stats import FeatureSet
from fidlens.workflow.jobs import logged


def main(features: str, out: str, covariance: str, log: str) -> None:
    with logged(log):
        stats = statistics_from_features(FeatureSet.load(features), covariance)
        stats.save(out)
        print(f"{stats.num_images} images, {covariance} covariance -> {out}")


if __name__ == "__main__":
    main(snakemake.input[0], snakemake.output[0], snakemake.params.covariance, snakemake.log[0])
