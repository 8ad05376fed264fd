"""CLIP embeddings of one image set (the CLIP detector of the registry), through the content-keyed cache."""

from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import ExtractionSettings, compute_features
from fidlens.workflow.jobs import job


def main(images: str, detector_spec: DetectorSpec, out: str, device: str, batch_size: int, workers: int,
         max_images: int | None, cache: str) -> None:
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    features = compute_features(images, detector, max_images=max_images,
                                settings=ExtractionSettings(batch_size=batch_size, workers=workers, cache=cache))
    features.save(out)
    print(f"{features.features.shape[0]} images -> {out} (CLIP, {detector.weights_name})")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.images, spec_for_job(snakemake), snakemake.output[0], p.device, p.batch_size,
             p.workers, p.max_images, p.cache)
