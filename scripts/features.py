"""Features of one image set, or of several in one job (the demo's headline sets), with the job's
detector (Inception pool3 by default), through the content-keyed cache."""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import ExtractionSettings, compute_features
from fidlens.workflow.jobs import job


def main(sets: list[tuple[str, str, int | None]], detector_spec: DetectorSpec, device: str, batch_size: int,
         workers: int, cache: str) -> None:
    """SETS: (images, output file, max_images) each; the detector is loaded once for all of them."""
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    settings = ExtractionSettings(batch_size=batch_size, workers=workers, cache=cache)
    for images, out, max_images in sets:
        # Logits too whenever the weights have them: the resampling modes match class histograms.
        features = compute_features(images, detector, max_images=max_images, want_logits=detector.has_logits,
                                    settings=settings)
        features.save(out)
        print(f"{features.features.shape[0]} images -> {out} (detector {detector.weights_name})")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        images = _as_list(snakemake.input.images)
        # one job's sets share the params: a list of limits (demo_features) or one (features)
        limits = list(p.max_images) if isinstance(p.max_images, (list, tuple)) else [p.max_images] * len(images)
        main(list(zip(images, list(snakemake.output), limits, strict=True)), spec_for_job(snakemake), p.device,
             p.batch_size, p.workers, p.cache)
