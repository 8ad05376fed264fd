"""Inception pool3 features of one image set, through the content-keyed cache."""

from fidlens.detectors.features import pick_device
from fidlens.detectors.inception_weights import load_inception
from fidlens.extraction.pipeline import ExtractionSettings, compute_features
from fidlens.workflow.jobs import logged


def main(images: str, weights: str, out: str, log: str, threads: int, device: str, batch_size: int,
         workers: int, max_images: int | None, cache: str) -> None:
    with logged(log, threads):
        detector = load_inception(weights, device=pick_device(device, log=print))
        settings = ExtractionSettings(batch_size=batch_size, workers=workers, cache=cache)
        # Logits too whenever the weights have them: the resampling modes match class histograms.
        features = compute_features(images, detector, max_images=max_images, want_logits=detector.has_logits,
                                    settings=settings)
        features.save(out)
        print(f"{features.pool3.shape[0]} images -> {out} (detector {detector.weights_name})")


if __name__ == "__main__":
    p = snakemake.params
    main(snakemake.input.images, snakemake.input.weights, snakemake.output[0], snakemake.log[0],
         snakemake.threads, p.device, p.batch_size, p.workers, p.max_images, p.cache)
