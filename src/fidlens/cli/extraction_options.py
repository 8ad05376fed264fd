"""The feature-extraction options every image-reading command shares, and what they become.

``fid``, ``kid``, ``stats``, ``attribute``, ``fid-inf``, ``prdc`` and ``compare`` take the same
flags (detector, weights, device, batch size, cache, image limits) and turn them into the same
`ExtractionSettings` and lazily loaded detector; they live here, below every command module,
so that the subcommand modules need not import the main parser (and the parser theirs).
"""

from __future__ import annotations

import argparse

from fidlens.cli import checks as check

__all__ = ["add_detector_options", "add_extraction_options", "add_limit_options", "check_weights_spec",
           "decode_limits", "detector_factory", "detector_spec", "extraction_settings", "load_cli_detector",
           "precheck_against_detector"]


def _detector_name(text: str) -> str:
    """argparse type of --detector: a registered name, else the list of names (no torch is imported to check)."""
    from fidlens.core.errors import FidlensError
    from fidlens.detectors.registry import registered

    try:
        return registered(text)
    except FidlensError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_detector_options(group) -> None:
    """--detector, --weights and --no-download: which network makes the features, and may it be fetched."""
    group.add_argument("--detector", type=_detector_name, default="inception", metavar="NAME",
                       help="feature extractor: inception (FID's TF-2015 Inception-v3, the default), clip (CLIP "
                            "ViT-B/32 image embeddings) or precomputed (read .npy/.npz embeddings made elsewhere, "
                            "e.g. DINOv2, instead of images)")
    group.add_argument("--weights", default="default",
                       help="the detector's weights. inception: 'default' (default_1.pt, fetched on first use), a "
                            "path to inception-2015-12-05.pt / pt_inception-2015-12-05-6726825d.pth, or a URL; "
                            "clip: a path to ViT-B-32.pt; precomputed: a label naming the feature space")
    group.add_argument("--no-download", action="store_true",
                       help="never fetch missing default weights (also: FIDLENS_OFFLINE=1); stop with an error instead")


def add_extraction_options(parser: argparse.ArgumentParser) -> None:
    """The "feature extraction" flag group, spelled and defaulted the same on every command."""
    group = parser.add_argument_group("feature extraction")
    add_detector_options(group)
    group.add_argument("--device", type=check.device, default="auto",
                       help="'auto' (CUDA if visible, else CPU), 'cpu', 'cuda', 'cuda:1', ...")
    group.add_argument("--batch-size", type=check.positive_int, default=64, help="images per forward pass (default 64)")
    group.add_argument("--workers", type=check.workers, default=None,
                       help="image decoding processes (default: 0 on ≤ 2 cores, else up to 8: half the cores on a "
                            "CPU, all but one with CUDA)")
    group.add_argument("--max-images", type=check.positive_int, default=None,
                       help="use only the first N images of each set")
    group.add_argument("--cache-dir", type=check.output_dir, default=None,
                       help="feature cache directory (default $FIDLENS_HOME/features)")
    group.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    add_limit_options(group)


def add_limit_options(group) -> None:
    """Per-image ceilings (see `fidlens.data.image_limits`); the flags override the environment variables."""
    from fidlens.data.image_limits import (
        DEFAULT_MAX_BYTES,
        DEFAULT_MAX_PIXELS,
        ENV_MAX_BYTES,
        ENV_MAX_PIXELS,
    )

    group.add_argument("--max-image-pixels", type=check.positive_int, default=None, metavar="N",
                       help=f"refuse an image whose header declares more than N pixels (default ${ENV_MAX_PIXELS} "
                            f"or {DEFAULT_MAX_PIXELS} = 8192²)")
    group.add_argument("--max-image-bytes", type=check.positive_int, default=None, metavar="N",
                       help=f"refuse an image file or ZIP member larger than N bytes (default ${ENV_MAX_BYTES} "
                            f"or {DEFAULT_MAX_BYTES} = 256 MiB)")


def decode_limits(args: argparse.Namespace):
    """The DecodeLimits of this command: the flags where given, else the environment or the defaults."""
    from fidlens.data.image_limits import DecodeLimits

    pixels, size = getattr(args, "max_image_pixels", None), getattr(args, "max_image_bytes", None)
    base = DecodeLimits.from_env() if pixels is None or size is None else None
    return DecodeLimits(max_pixels=pixels or base.max_pixels, max_bytes=size or base.max_bytes)


def extraction_settings(args: argparse.Namespace):
    """The `ExtractionSettings` the flags ask for (the cache off with --no-cache)."""
    from fidlens.extraction.pipeline import ExtractionSettings

    return ExtractionSettings(
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
        progress=not args.quiet,
        cache="" if args.no_cache else args.cache_dir,
        limits=decode_limits(args),
    )


def check_weights_spec(spec: str | None, detector: str = "inception") -> None:
    """A local Inception --weights file must be there; checked before any image is read (URLs download later)."""
    if detector != "inception" or spec in (None, "", "default") or str(spec).startswith(("http://", "https://")):
        return
    from fidlens.assets.store import resolve_inception_weights

    resolve_inception_weights(spec)


def detector_spec(args: argparse.Namespace):
    """The `DetectorSpec` of --detector and --weights (commands without --detector mean Inception)."""
    from fidlens.detectors.base import DetectorSpec

    return DetectorSpec(getattr(args, "detector", "inception"), args.weights or "default")


def load_cli_detector(spec, args: argparse.Namespace):
    """Load SPEC's detector on --device, fetching the default weights first when they are missing and allowed."""
    from fidlens.cli.first_use import ensure_default_weights
    from fidlens.extraction import pipeline

    ensure_default_weights(spec, allow_download=not getattr(args, "no_download", False))
    return pipeline.load_detector(spec, args.device)


def detector_factory(args: argparse.Namespace):
    """Load the detector on first use; the device, the name and an explicit weights file are checked now."""
    from fidlens.detectors.device import check_device
    from fidlens.detectors.registry import LazyDetector

    check_device(args.device)
    spec = detector_spec(args)
    check_weights_spec(spec.weights, spec.name)
    return LazyDetector(spec, lambda s: load_cli_detector(s, args))


def precheck_against_detector(args: argparse.Namespace, files: dict[int, object], detector, covariance: str | None):
    """Before any image is decoded: the .npz sides must match what the detector will produce."""
    from fidlens.extraction.pipeline import comparison_notes, detector_meta

    images = [i for i in range(len(args.paths)) if i not in files]
    if not images or not files:
        return
    side = detector_meta(detector())
    if covariance is not None:
        side["covariance"] = covariance
    for i, item in files.items():
        comparison_notes(item.meta, side, names=(args.paths[i], args.paths[images[0]]),
                         allow_mismatch=args.allow_mismatch)
