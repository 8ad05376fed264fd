"""``fidlens attribute``: exact leave-one-out ΔFID of every image of a set, ranked.

Writes OUT/ranking.csv (index, name, delta_fid, rank), OUT/attribution.json (FID, sizes,
conventions, accuracy) and, when GENERATED holds images, OUT/grid.png; with --candidates also
OUT/candidates.csv (ΔFID when each candidate joins the set). The sides are checked for the same
detector and covariance / resize conventions as in ``fidlens fid`` (--allow-mismatch to
override). Every output is computed first and then written atomically, so a failed run
leaves nothing behind.
Wired into the main parser by `add_attribute_command` (see ``fidlens.cli.main.build_parser``).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from fidlens.cli.extraction_options import (
    add_extraction_options,
    detector_factory,
    extraction_settings,
)
from fidlens.core.atomic import write_bytes_atomic, write_text_atomic
from fidlens.core.errors import FidlensError, StatisticsError
from fidlens.metrics.attribution import Attribution, FidAttribution, ranking_csv_text
from fidlens.metrics.stats import FeatureSet, Statistics

__all__ = ["add_attribute_command", "cmd_attribute"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_attribute_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``attribute`` on the main parser's subcommands; return its parser."""
    p = sub.add_parser(
        "attribute", help="exact leave-one-out ΔFID of every image of a set: which images FID dislikes",
        description="ΔFID_i = FID(set without image i) − FID(set), exact, for every image (one O(d³) set-up, "
                    "then a rank-1 trace update per image). Rank 1 = removing it lowers FID the most. "
                    "Writes OUT/ranking.csv, OUT/attribution.json and, for image sets, OUT/grid.png.")
    p.add_argument("generated", metavar="GENERATED",
                   help="the set to attribute: an image folder, a dataset ZIP or a fidlens feature .npz ('features')")
    p.add_argument("--reference", required=True, metavar="REF",
                   help="reference statistics .npz (mu, sigma), or an image folder / ZIP")
    p.add_argument("--out", default="attribution", help="output folder (default ./attribution)")
    p.add_argument("--top", type=_positive_int, default=8,
                   help="images printed and shown per row of the grid (default 8)")
    p.add_argument("--covariance", choices=("unbiased", "population"), default="unbiased",
                   help="divisor of the generated set's covariance, N-1 or N (kept when an image is removed)")
    p.add_argument("--candidates", metavar="CAND", default=None,
                   help="images (folder / ZIP) or a feature .npz of candidates: also write OUT/candidates.csv with "
                        "ΔFID = FID(set with the candidate added) - FID(set) for each (rank 1 = lowers FID most)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="attribute even if the sides record different detectors (sha256), covariance or resize "
                        "conventions; a one-line warning names both sides (default: refuse)")
    add_extraction_options(p)
    p.set_defaults(func=cmd_attribute)
    return p


def _load_feature_file(path: Path) -> FeatureSet:
    try:
        return FeatureSet.load(path)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # e.g. 'meta' that is not JSON
        raise StatisticsError(f"{path} is not a fidlens feature file ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:120]})") from None
    except StatisticsError as exc:
        try:
            Statistics.load(path)
        except StatisticsError:
            raise exc from None
        raise StatisticsError(f"{path} holds statistics (mu, sigma), not per-image features: give the image "
                              "folder / ZIP or a fidlens feature .npz") from None


def _features_of(path_text: str, args: argparse.Namespace, load_detector):
    """(features (N, d), names, image source or None, metadata) of an image set or a feature .npz."""
    from fidlens.data.datasets import open_image_source
    from fidlens.extraction.pipeline import compute_features, is_statistics_file

    path = Path(path_text)
    if is_statistics_file(path):
        features = _load_feature_file(path)
        pool3 = features.features
        names = features.meta.get("names")
        if not (isinstance(names, list) and len(names) == len(pool3)):
            names = [""] * len(pool3)
        if args.max_images is not None:
            pool3, names = pool3[: args.max_images], names[: args.max_images]
        return pool3, [str(n) for n in names], None, dict(features.meta)
    source = open_image_source(path, max_images=args.max_images)
    features = compute_features(path, load_detector(), max_images=args.max_images, settings=extraction_settings(args))
    return features.features, list(source.names), source, dict(features.meta)


def _generated(args: argparse.Namespace, load_detector):
    """(features (N, d), names, image source or None) of GENERATED."""
    features, names, source, _ = _features_of(args.generated, args, load_detector)
    return features, names, source


def _check_sides(args: argparse.Namespace, sides: list[tuple[str, dict]]) -> None:
    """Refuse (or, with --allow-mismatch, warn about) sides from different detectors or conventions, as `fid` does."""
    from fidlens.extraction.pipeline import comparison_notes

    first_name, first_meta = sides[0]
    for name, meta in sides[1:]:
        for category, message in comparison_notes(first_meta, meta, names=(first_name, name),
                                                  allow_mismatch=args.allow_mismatch):
            warnings.warn(message, category, stacklevel=2)


def candidates_csv_text(delta: np.ndarray, names: list[str]) -> str:
    """``index,name,delta_fid,rank`` in rank order: rank 1 = adding it lowers FID the most."""
    import csv
    import io

    from fidlens.metrics.attribution import ranks_from_delta

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "name", "delta_fid", "rank"])
    ranks = ranks_from_delta(delta)
    for i in sorted(range(len(delta)), key=lambda k: ranks[k]):
        writer.writerow([i, names[i], repr(float(delta[i])), int(ranks[i])])
    return buffer.getvalue()


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FidlensError(f"--out {out} exists and is not a folder")


def _summary(result: Attribution, args: argparse.Namespace, reference: Statistics, top: int) -> dict:
    order = result.order
    info = result.quadrature

    def rows(indices) -> list[dict]:
        return [{"index": int(i), "name": result.names[i], "delta_fid": float(result.delta_fid[i]),
                 "rank": int(result.ranks[i])} for i in indices]

    return {
        "fid": result.fid,
        "num_images": int(result.delta_fid.size),
        "covariance": result.covariance,
        "reference": str(args.reference),
        "reference_covariance": str(reference.meta.get("covariance", "unknown")),
        "generated": str(args.generated),
        "delta_fid": "FID(set without image) - FID(set); rank 1 = most negative (most harmful)",
        "quadrature": {"nodes": info.nodes, "step_log_t": info.step, "error_estimate": info.error_estimate,
                       "tolerance": result.extra["tolerance"]} if info else None,
        "most_harmful": rows(order[:top]),
        "most_helpful": rows(order[::-1][:top]),
    }


def cmd_attribute(args: argparse.Namespace) -> None:
    from fidlens.extraction.pipeline import resolve_statistics
    from fidlens.studies.attribution_grid import render_attribution_grid

    out = Path(args.out)
    _check_out(out)
    detector = detector_factory(args)
    reference = resolve_statistics(args.reference, detector, covariance=args.covariance,
                                   max_images=args.max_images, settings=extraction_settings(args))
    features, names, source, meta = _features_of(args.generated, args, detector)
    sides = [(str(args.reference), dict(reference.meta)), (str(args.generated), dict(meta, covariance=args.covariance))]
    candidates = None
    if args.candidates is not None:
        cand_features, cand_names, _, cand_meta = _features_of(args.candidates, args, detector)
        sides.append((str(args.candidates), dict(cand_meta, covariance=args.covariance)))
        candidates = (cand_features, cand_names)
    _check_sides(args, sides)
    model = FidAttribution(features, reference.mu, reference.sigma, covariance=args.covariance)
    delta, info, leak = model.leave_one_out()
    result = Attribution(delta_fid=delta, fid=model.fid, covariance=model.covariance, names=list(names), quadrature=info,
                         extra={"null_space_leak": leak, "rank": model.rank, "tolerance": model.tol})
    cand_text = None
    if candidates is not None:
        cand_delta = model.add_in(candidates[0])
        cand_text = candidates_csv_text(cand_delta, [n or "" for n in candidates[1]])
    top = min(args.top, result.delta_fid.size)

    grid = None
    if source is not None:
        grid = render_attribution_grid(source.__getitem__, result.delta_fid, result.ranks, names, top,
                                       title=f"{Path(args.generated).name}: ΔFID = FID(without image) − FID(set), "
                                             f"FID {result.fid:.3f}, N = {result.delta_fid.size}")
    csv_text = ranking_csv_text(result)
    summary = json.dumps(_summary(result, args, reference, top), indent=1, allow_nan=False) + "\n"
    try:
        write_text_atomic(out / "ranking.csv", csv_text)
        write_text_atomic(out / "attribution.json", summary)
        if grid is not None:
            write_bytes_atomic(out / "grid.png", grid)
        if cand_text is not None:
            write_text_atomic(out / "candidates.csv", cand_text)
    except OSError as exc:
        raise FidlensError(f"cannot write to {out}: {exc.strerror or exc}") from None

    print(f"FID: {result.fid}")
    print(f"most harmful (removing lowers FID), of {result.delta_fid.size} images:")
    for i in result.order[:top]:
        label = f" {names[i]}" if names[i] else ""
        print(f"  rank {int(result.ranks[i])}: image {int(i)}{label}  ΔFID {float(result.delta_fid[i]):+.6g}")
    if candidates is not None:
        best = int(np.argmin(cand_delta))
        label = f" {candidates[1][best]}" if candidates[1][best] else ""
        print(f"candidates: {cand_delta.size}; adding candidate {best}{label} lowers FID the most "
              f"(ΔFID {float(cand_delta[best]):+.6g})")
    print(f"wrote {out / 'ranking.csv'}, {out / 'attribution.json'}" + (f", {out / 'grid.png'}" if grid else "")
          + (f", {out / 'candidates.csv'}" if cand_text is not None else ""))
