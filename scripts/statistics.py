"""FID statistics (float64 mu, sigma + provenance) from a feature file."""

from fidlens.extraction.pipeline import statistics_from_features
from fidlens.metrics.stats import FeatureSet
from fidlens.workflow.jobs import job


def main(features: str, out: str, covariance: str) -> None:
    stats = statistics_from_features(FeatureSet.load(features), covariance)
    stats.save(out)
    print(f"{stats.num_images} images, {covariance} covariance -> {out}")


if __name__ == "__main__":
    with job(snakemake):
        main(snakemake.input[0], snakemake.output[0], snakemake.params.covariance)
