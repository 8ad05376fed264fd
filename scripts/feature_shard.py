"""One shard of an image set's features (images [start, stop) of its sorted order) and their float64 moments."""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import ExtractionSettings, compute_features
from fidlens.metrics.moments import Moments
from fidlens.workflow.jobs import job


def main(images: str, detector_spec: DetectorSpec, rows: list[int], out: str, moments_out: str, device: str,
         batch_size: int, workers: int, max_images: int | None, cache: str) -> None:
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    settings = ExtractionSettings(batch_size=batch_size, workers=workers, cache=cache)
    start, stop = rows
    # Logits too whenever the weights have them, as the unsharded features rule does.
    features = compute_features(images, detector, max_images=max_images, want_logits=detector.has_logits,
                                settings=settings, shard=(start, stop))
    features.save(out)
    Moments.of(features.features, what=f"features of images {start}..{stop - 1}").save(moments_out)
    print(f"images [{start}, {stop}) of {images} -> {out} (detector {detector.weights_name})")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.images, spec_for_job(snakemake), list(p.rows), snakemake.output.features,
             snakemake.output.moments, p.device, p.batch_size, p.workers, p.max_images, p.cache)
