"""The shards of one set merged: the unsharded features file and statistics (from merged float64 moments)."""

from fidlens.extraction.shards import (
    check_shards,
    generated_set_meta,
    image_set_meta,
    merge_features,
    statistics_from_moments,
)
from fidlens.metrics.moments import Moments
from fidlens.metrics.stats import FeatureSet
from fidlens.workflow.jobs import job


def main(shard_files: list[str], moments_files: list[str], images: str | None, max_images: int | None,
         features_out: str, stats_out: str, covariance: str) -> None:
    """IMAGES: the image set (its whole-set metadata is read from it), or None for a generated set."""
    shards = [FeatureSet.load(path) for path in shard_files]
    moments = [Moments.load(path) for path in moments_files]
    if images is None:
        set_meta, count = generated_set_meta(shards[0].meta)
    else:
        set_meta, count = image_set_meta(images, shards[0].meta, max_images=max_images)
    check_shards(shards, moments, count)
    merge_features(shards, set_meta).save(features_out)
    stats = statistics_from_moments(moments, set_meta, covariance)
    stats.save(stats_out)
    print(f"{len(shards)} shards, {stats.num_images} images, {covariance} covariance -> {features_out}, {stats_out}")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        images = snakemake.input.images if "images" in snakemake.input.keys() else None
        main(list(snakemake.input.shards), list(snakemake.input.moments), images, p.max_images,
             snakemake.output.features, snakemake.output.stats, p.covariance)
