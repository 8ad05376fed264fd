"""The control detector's features of every image set the resampling runs read, each detector loaded once.

The control is any registered detector (CLIP, pixels, another Inception; precomputed embeddings
are read from their files); each set's features go through the content-keyed cache and to the
file its runs read (rules/resampling.smk).
"""

from fidlens.detectors.base import DetectorSpec
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import ExtractionSettings, compute_features
from fidlens.workflow.jobs import job


def main(jobs: list[dict], device: str, batch_size: int, workers: int, cache: str) -> None:
    """JOBS: {detector: {name, weights}, source (an image set, or an embeddings file), out, max_images} each."""
    loaded: dict[tuple[str, str], object] = {}
    settings = ExtractionSettings(batch_size=batch_size, workers=workers, cache=cache)
    for item in jobs:
        spec = DetectorSpec.from_any(item["detector"])
        key = (spec.name, spec.weights)
        if key not in loaded:
            loaded[key] = load_detector(spec, device=pick_device(device, log=print))
        detector = loaded[key]
        features = compute_features(item["source"], detector, max_images=item["max_images"], settings=settings)
        features.save(item["out"])
        print(f"{features.features.shape[0]} images -> {item['out']} ({spec.name}, {detector.weights_name})")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(p.jobs, p.device, p.batch_size, p.workers, p.cache)
