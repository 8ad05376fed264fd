"""``fidlens fid-inf``, ``prdc`` and ``compare``, and the ``--ci`` interval of ``fidlens fid``.

Each side is an image folder, a dataset ZIP or a feature ``.npz``; a reference may also be
a statistics ``.npz`` where the method allows it (FID∞ without KID∞, a comparison with a
fixed reference). Wired into the main parser by `add_metrics_commands` and `add_ci_options`
(see ``fidlens.cli.main.build_parser``); everything is computed before any output is written,
and each output file is written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import warnings
from pathlib import Path
from typing import Any

from fidlens.cli.extraction_options import (
    add_extraction_options,
    detector_factory,
    extraction_settings,
    precheck_against_detector,
)
from fidlens.core.errors import FidlensError
from fidlens.metrics.covariance import Covariance

__all__ = ["add_ci_options", "add_metrics_commands", "print_fid_interval"]


# ----------------------------------------------------------------------------- argument types


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a confidence level such as 0.95, not {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"the confidence level must lie strictly between 0 and 1, got {text}")
    return value


def _int_at_least(low: int, high: int | None = None):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    convert.__name__ = "int"
    return convert


def _sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 5000,10000,20000, "
                                         f"not {text!r}") from None
    if any(v < 2 for v in values):
        raise argparse.ArgumentTypeError(f"size {min(values)} is impossible: a subset needs at least 2 images")
    if len(set(values)) < 3:
        raise argparse.ArgumentTypeError(f"FID∞ needs at least 3 different sizes, got {len(set(values))}")
    return values


def _add_bootstrap_options(parser: argparse.ArgumentParser, *, ci_default: float | None) -> None:
    from fidlens.metrics.bootstrap import DEFAULT_RESAMPLES, MAX_RESAMPLES, METHODS

    group = parser.add_argument_group("bootstrap interval")
    group.add_argument("--ci", type=_level, default=ci_default, metavar="LEVEL",
                       help="confidence level of the bootstrap interval, e.g. 0.95"
                            + (f" (default {ci_default})" if ci_default else
                               "; image sets are resampled from their cached features (extracted again with "
                               "--no-cache), statistics files cannot be resampled"))
    group.add_argument("--bootstrap", type=_int_at_least(2, MAX_RESAMPLES), default=DEFAULT_RESAMPLES, metavar="B",
                       help=f"number of bootstrap resamples (default {DEFAULT_RESAMPLES})")
    group.add_argument("--seed", type=_int_at_least(0, 2**63 - 1), default=0, help="resampling seed (default 0)")
    group.add_argument("--interval", choices=METHODS, default=METHODS[0],
                       help="bias-corrected: Efron's percentiles shifted by the bootstrap bias (default; FID "
                            "replicates of resampled sets run high); percentile: the raw percentiles")


def add_ci_options(parser: argparse.ArgumentParser) -> None:
    """``fidlens fid --ci LEVEL [--bootstrap B] [--seed S] [--interval M]``."""
    _add_bootstrap_options(parser, ci_default=None)


# ----------------------------------------------------------------------------- loading sides


def _is_statistics(path: str) -> bool:
    from fidlens.extraction.pipeline import is_statistics_file, npz_kind

    return is_statistics_file(path) and npz_kind(path) == "statistics"


def _npz_side(path: str, args: argparse.Namespace, *, statistics_ok: bool, command: str):
    """A statistics or feature ``.npz``, read now (cheap); refused when the command needs features."""
    from fidlens.metrics.feature_files import read_feature_file
    from fidlens.metrics.stats import Statistics

    if _is_statistics(path):
        if not statistics_ok:
            raise FidlensError(f"{path} is a statistics file (mu, sigma only); {command} needs per-image features: "
                               "give an image folder, a dataset ZIP or a feature .npz")
        return Statistics.load(path)
    return read_feature_file(path, max_images=args.max_images)


def _load_sides(args: argparse.Namespace, *, statistics_ok: tuple[bool, ...], command: str,
                covariance: str | None) -> list[Any]:
    """Every side of ``args.paths``: the .npz files first and checked against the detector, then images."""
    from fidlens.extraction.pipeline import compute_features, is_statistics_file

    paths = list(args.paths)
    detector = detector_factory(args)
    sides: dict[int, Any] = {i: _npz_side(p, args, statistics_ok=statistics_ok[i], command=command)
                             for i, p in enumerate(paths) if is_statistics_file(p)}
    precheck_against_detector(args, sides, detector, covariance)
    for i, path in enumerate(paths):
        if i not in sides:
            sides[i] = compute_features(path, detector(), max_images=args.max_images, settings=extraction_settings(args))
    return [sides[i] for i in range(len(paths))]


def _check_pairs(args: argparse.Namespace, sides: list[Any], pairs: list[tuple[int, int]],
                 covariance: str | None) -> None:
    """Refuse (or, with --allow-mismatch, warn about) sides from different detectors or conventions."""
    from fidlens.metrics.comparability import Side, check_comparable
    from fidlens.metrics.stats import Statistics

    def meta(item) -> dict:
        info = dict(item.meta)
        if covariance is not None and not isinstance(item, Statistics):
            info["covariance"] = covariance
        return info

    keys = ("detector_sha256", "covariance", "resize") if covariance else ("detector_sha256", "resize")
    for i, j in pairs:
        notes = check_comparable(Side(args.paths[i], meta(sides[i])), Side(args.paths[j], meta(sides[j])),
                                 allow_mismatch=args.allow_mismatch, keys=keys)
        for category, message in notes:
            warnings.warn(message, category, stacklevel=2)


def _reference_arg(item):
    """Features, or (mu, sigma) of a statistics file: what the metric modules take as a reference."""
    from fidlens.metrics.stats import Statistics

    return (item.mu, item.sigma) if isinstance(item, Statistics) else item.features


_INCEPTION_WEIGHTS = ("default_1.pt", "inception-2015-12-05.pt", "pt_inception-2015-12-05-6726825d.pth")


def _feature_space(item, path: str) -> str:
    """Which features these are: Inception pool3 for images and fidlens' Inception files, else the record."""
    from fidlens.extraction.pipeline import is_statistics_file

    name = item.meta.get("detector")
    recorded = item.meta.get("detector_spec")
    kind = recorded.get("name") if isinstance(recorded, dict) else None
    if kind not in (None, "inception"):
        return f"{kind} ({name})"
    if not is_statistics_file(path) or name in _INCEPTION_WEIGHTS:
        return f"Inception-v3 pool3 ({name})"
    return str(name) if name not in (None, "", "unknown") else "unknown (the feature file records no detector)"


def _note(message: str) -> None:
    print(f"note: {' '.join(message.split())}", file=sys.stderr)


def _write_outputs(files: dict[Path, Any]) -> None:
    """Write every file or none: all go to temporary files first, renamed only when all are written.

    A value is text, or a callable that writes the given temporary path.
    """
    from fidlens.core.atomic import atomic_path

    try:
        with contextlib.ExitStack() as stack:
            for path, content in files.items():
                tmp = stack.enter_context(atomic_path(path))
                if callable(content):
                    content(tmp)
                else:
                    tmp.write_text(content)
    except OSError as exc:
        raise FidlensError(f"cannot write {exc.filename or 'the outputs'}: {exc.strerror or exc}") from None


def _json_text(data: Any) -> str:
    from fidlens.core.jsonio import dumps_strict

    return dumps_strict(data, indent=2) + "\n"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


# ----------------------------------------------------------------------------- fid --ci


def print_fid_interval(args: argparse.Namespace, value: float):
    """After ``FID: v``, print ``FID: v [lo, hi]`` from a bootstrap of every side that has per-image features.

    Returns the `BootstrapInterval` (None without ``--ci``); with ``--json`` the caller prints it.
    """
    if getattr(args, "ci", None) is None:
        return None
    from fidlens.metrics.bootstrap import bootstrap_fid
    from fidlens.extraction.pipeline import resolve_features

    paths = list(args.paths)
    covariance = args.covariance or "unbiased"
    fixed = [i for i, p in enumerate(paths) if _is_statistics(p)]
    if len(fixed) == 2:
        raise FidlensError("no confidence interval: both sides are statistics files (mu, sigma only), which hold "
                           "no images to resample; give an image folder, a dataset ZIP or a feature .npz")
    detector = detector_factory(args)
    features = {i: resolve_features(p, detector, max_images=args.max_images, settings=extraction_settings(args)).features
                for i, p in enumerate(paths) if i not in fixed}
    if fixed:
        from fidlens.metrics.stats import Statistics

        stats = Statistics.load(paths[fixed[0]])
        moving = 1 - fixed[0]
        reference, generated, both = (stats.mu, stats.sigma), features[moving], False
        _note(f"{paths[fixed[0]]} is a statistics file (mu, sigma only): its images cannot be resampled, so the "
              f"interval covers only the sampling of the images of {paths[moving]}")
    else:
        reference, generated, both = features[0], features[1], True
    with warnings.catch_warnings():
        from fidlens.metrics.frechet import FewSamplesWarning

        warnings.simplefilter("ignore", FewSamplesWarning)  # said once already by the plain FID
        result = bootstrap_fid(reference, generated, resample_reference=both, resamples=args.bootstrap,
                               level=args.ci, seed=args.seed, method=args.interval,
                               unbiased=Covariance.parse(covariance).unbiased, estimate=value, progress=not args.quiet)
    if not getattr(args, "json", False):
        print(f"FID: {value} [{result.low}, {result.high}]")
    which = " and ".join(paths[i] for i in features)
    _note(f"{args.ci:g} {result.method} bootstrap interval from {result.resamples} resamples (seed {args.seed}) of "
          f"the images of {which}; the replicates' mean exceeds FID by {result.bias:.4g}"
          + (" (removed from the interval)" if result.method == "bias-corrected" else ""))
    return result


# ----------------------------------------------------------------------------- fid-inf


def cmd_fid_inf(args: argparse.Namespace) -> None:
    from fidlens.metrics.fid_infinity import draw_inverse_n, fid_infinity

    covariance = args.covariance or "unbiased"
    args.paths = [args.reference, args.generated]
    reference, generated = _load_sides(args, statistics_ok=(True, False), command="fid-inf", covariance=covariance)
    _check_pairs(args, [reference, generated], [(0, 1)], covariance)
    result = fid_infinity(_reference_arg(reference), generated.features, sizes=args.sizes, points=args.points,
                          seed=args.seed, kid=not args.no_kid, unbiased=Covariance.parse(covariance).unbiased,
                          progress=not args.quiet)
    for message in result.notes:
        _note(message)
    fits = [result.fid] + ([result.kid] if result.kid is not None else [])
    for fit in fits:
        print(f"{fit.metric}_inf: {fit.intercept}")
        print(f"  {fit.metric}_N = {_fmt(fit.intercept)} + {_fmt(fit.slope)}/N, R² {_fmt(fit.r_squared)}, "
              f"{fit.sizes.size} sizes N = {fit.sizes[0]}..{fit.sizes[-1]}, max |residual| "
              f"{_fmt(float(abs(fit.residuals).max()))}")
    if args.out is None:
        return
    out = Path(args.out)
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["metric", "n", "inverse_n", "value", "fitted", "residual"])
    for fit in fits:
        for n, v, r in zip(fit.sizes, fit.values, fit.residuals):
            writer.writerow([fit.metric, int(n), repr(1.0 / n), repr(float(v)), repr(float(v - r)), repr(float(r))])
    summary = dict(result.as_dict(), reference=args.reference, generated=args.generated, covariance=covariance)
    fig = draw_inverse_n(result, title=f"{Path(args.generated).name} vs {Path(args.reference).name}: "
                                       f"value at N against 1/N (Chong & Forsyth 2020)")

    def png(tmp: Path) -> None:
        fig.savefig(tmp, dpi=120, format="png")

    try:
        _write_outputs({out / "fid_infinity.csv": rows.getvalue(), out / "fid_infinity.json": _json_text(summary),
                        out / "fid_vs_inverse_n.png": png})
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    print(f"wrote {out / 'fid_infinity.csv'}, {out / 'fid_infinity.json'}, {out / 'fid_vs_inverse_n.png'}")


# ----------------------------------------------------------------------------- prdc


def cmd_prdc(args: argparse.Namespace) -> None:
    from fidlens.metrics.prdc import prdc

    args.paths = [args.real, args.fake]
    real, fake = _load_sides(args, statistics_ok=(False, False), command="prdc", covariance=None)
    _check_pairs(args, [real, fake], [(0, 1)], None)
    space = _feature_space(real, args.real)
    result = prdc(real.features, fake.features, k_pr=args.k, k_dc=args.k_dc, feature_space=space)
    print(f"precision: {result.precision}")
    print(f"recall: {result.recall}")
    print(f"density: {result.density}")
    print(f"coverage: {result.coverage}")
    print(f"feature_space: {result.feature_space}")
    print(f"note: {result.note}")
    if args.json_out is not None:
        summary = dict(result.as_dict(), real=args.real, fake=args.fake)
        _write_outputs({Path(args.json_out): _json_text(summary)})
        print(f"wrote {args.json_out}")


# ----------------------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> None:
    from fidlens.metrics.bootstrap import compare_fid

    covariance = args.covariance or "unbiased"
    args.paths = [args.reference, args.a, args.b]
    if args.resample_reference and _is_statistics(args.reference):
        raise FidlensError(f"--resample-reference: {args.reference} is a statistics file (mu, sigma only), whose "
                           "images cannot be resampled; give its image folder, ZIP or feature .npz")
    sides = _load_sides(args, statistics_ok=(True, False, False), command="compare A and B", covariance=covariance)
    _check_pairs(args, sides, [(0, 1), (0, 2), (1, 2)], covariance)
    result = compare_fid(_reference_arg(sides[0]), sides[1].features, sides[2].features,
                         resample_reference=args.resample_reference, resamples=args.bootstrap, level=args.ci,
                         seed=args.seed, method=args.interval, unbiased=Covariance.parse(covariance).unbiased,
                         progress=not args.quiet)
    for label, interval in (("FID(A)", result.fid_a), ("FID(B)", result.fid_b),
                            ("FID(A) - FID(B)", result.difference)):
        print(f"{label}: {interval.estimate} [{interval.low}, {interval.high}]")
    better, p = ("A", result.p_a_better) if result.p_a_better >= 0.5 else ("B", 1.0 - result.p_a_better)
    print(f"{better} better (lower FID) with probability {p:.4f}")
    resampled = "A, B and the reference (jointly for both)" if args.resample_reference else "A and B"
    _note(f"A = {args.a}, B = {args.b}; {args.ci:g} {args.interval} bootstrap intervals from {args.bootstrap} "
          f"resamples (seed {args.seed}) of {resampled}; probability = share of the "
          f"{'bias-corrected ' if args.interval == 'bias-corrected' else ''}resamples in which FID(A) < FID(B)")
    if args.json_out is not None:
        summary = dict(result.as_dict(), reference=args.reference, a=args.a, b=args.b, covariance=covariance)
        _write_outputs({Path(args.json_out): _json_text(summary)})
        print(f"wrote {args.json_out}")


# ----------------------------------------------------------------------------- registration


def add_metrics_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fid-inf``, ``prdc`` and ``compare`` on the main parser's subcommands."""
    from fidlens.cli import checks as check
    from fidlens.metrics.fid_infinity import DEFAULT_POINTS

    mismatch = ("compare even if the sides record different detectors or conventions; a one-line warning names "
                "both (default: refuse)")
    covariance_help = "divide by N-1 (the default) or N; a statistics file keeps the convention it was made with"

    p = sub.add_parser("fid-inf", help="FID∞ and KID∞: FID at several N extrapolated to N = ∞ (Chong & Forsyth 2020)",
                       description="FID and KID at 15 sizes N in linspace(5000, 50000) (scaled down for smaller "
                                   "sets, with a note), each on a seeded random subset of GENERATED against all of "
                                   "REFERENCE; a least-squares line in 1/N; the intercept is the value at N = ∞. "
                                   "Prints FID_inf and KID_inf with slope, R² and residuals.")
    p.add_argument("reference", metavar="REFERENCE",
                   help="image folder, dataset ZIP, feature .npz or statistics .npz (then no KID∞)")
    p.add_argument("generated", metavar="GENERATED", help="image folder, dataset ZIP or feature .npz")
    p.add_argument("--points", type=_int_at_least(3, 1000), default=DEFAULT_POINTS,
                   help=f"number of sizes N (default {DEFAULT_POINTS})")
    p.add_argument("--sizes", type=_sizes, default=None, help="explicit sizes, e.g. 5000,10000,20000,50000")
    p.add_argument("--seed", type=_int_at_least(0, 2**63 - 1), default=0, help="subset seed (default 0)")
    p.add_argument("--no-kid", action="store_true", help="skip KID∞ (it costs one pass over the N × N kernels)")
    p.add_argument("--covariance", choices=("unbiased", "population"), default=None, help=covariance_help)
    p.add_argument("--out", type=check.output_dir, default=None,
                   help="folder for fid_infinity.csv, fid_infinity.json and fid_vs_inverse_n.png")
    p.add_argument("--allow-mismatch", action="store_true", help=mismatch)
    add_extraction_options(p)
    p.set_defaults(func=cmd_fid_inf)

    p = sub.add_parser("prdc", help="precision, recall (k = 3), density and coverage (k = 5) of FAKE against REAL",
                       description="Improved precision and recall (Kynkäänniemi et al. 2019) and density and "
                                   "coverage (Naeem et al. 2020) in the detector's feature space, with chunked "
                                   "float64 distances. Published values use VGG16 or DINOv2 features: values "
                                   "in Inception space are not comparable to them (the output says so).")
    p.add_argument("real", metavar="REAL", help="image folder, dataset ZIP or feature .npz")
    p.add_argument("fake", metavar="FAKE", help="image folder, dataset ZIP or feature .npz")
    p.add_argument("--k", type=_int_at_least(1, 10_000), default=3, help="k of precision and recall (default 3)")
    p.add_argument("--k-dc", type=_int_at_least(1, 10_000), default=5, help="k of density and coverage (default 5)")
    p.add_argument("--json-out", type=check.output_file((".json",)), default=None, help="also write the numbers to this .json file")
    p.add_argument("--allow-mismatch", action="store_true", help=mismatch)
    add_extraction_options(p)
    p.set_defaults(func=cmd_prdc)

    p = sub.add_parser("compare", help="is A better than B? A bootstrap of FID(A) − FID(B) against one reference",
                       description="FID(A), FID(B) and FID(A) − FID(B) with bootstrap intervals: A and B resampled "
                                   "independently (and, with --resample-reference, the reference once per resample "
                                   "for both), and the probability that A has the lower FID.")
    p.add_argument("reference", metavar="REF", help="image folder, dataset ZIP, feature .npz or statistics .npz")
    p.add_argument("a", metavar="A", help="first generated set: image folder, dataset ZIP or feature .npz")
    p.add_argument("b", metavar="B", help="second generated set: image folder, dataset ZIP or feature .npz")
    _add_bootstrap_options(p, ci_default=0.95)
    p.add_argument("--resample-reference", action="store_true",
                   help="resample the reference's images too (needs its images or features)")
    p.add_argument("--covariance", choices=("unbiased", "population"), default=None, help=covariance_help)
    p.add_argument("--json-out", type=check.output_file((".json",)), default=None, help="also write the numbers to this .json file")
    p.add_argument("--allow-mismatch", action="store_true", help=mismatch)
    add_extraction_options(p)
    p.set_defaults(func=cmd_compare)
