"""One pair map from start to files: explain the bad and the good image, draw them, write their numbers.

Why here and not in the workflow script: the script should only read its job's files and params;
the steps (and the content of the numbers file) belong to the study, where a test can call them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fidlens.core.errors import FidlensError
from fidlens.core.rawdata import strict_json, write_json
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.metrics.stats import Statistics
from fidlens.studies.pairs.spec import Pair, PairsFile

__all__ = ["map_statistics", "pair_named", "render_pair_map", "render_pair_maps", "statistics_sizes"]


def pair_named(chosen: PairsFile, stem: str, source: str | os.PathLike = "the pairs file") -> Pair:
    """The pair whose file stem is STEM (``pair_BAD_GOOD``); checked before any network is loaded."""
    pair = next((p for p in chosen.pairs if p.stem == stem), None)
    if pair is None:
        raise FidlensError(f"{source} has no pair named {stem}")
    return pair


def map_statistics(study: str | os.PathLike, reference_features: str | os.PathLike, *, reference_images: int,
                   generated_images: int, covariance: str = "unbiased") -> tuple[Statistics, Statistics]:
    """(reals, generated) statistics of the pair maps, as the heatmap study defines them.

    The reals are the first REFERENCE_IMAGES images of the reference set (all of them when it
    has fewer: MetFaces), the generated set the study's first GENERATED_IMAGES images (its
    49,999 of 50,000); each explained image then joins the generated set as image N. Both come
    from features already on disk, in float64.
    """
    import warnings

    from fidlens.metrics.stats import FeatureSet
    from fidlens.studies.pairs.study_file import Study

    saved = Study.load(study)
    if generated_images > saved.num_images:
        raise FidlensError(f"pair maps ask for {generated_images} generated images; {study} holds {saved.num_images}")
    reals = FeatureSet.load(reference_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few-sample warning is the study's (the demo's 100 faces), not news here
        reference = Statistics.from_features(reals.pool3[:reference_images], covariance=covariance,
                                             meta={"source": f"first {min(reference_images, len(reals.pool3))} "
                                                             f"images of {reference_features}"})
        generated = Statistics.from_features(saved.arrays["pool3"][:generated_images], covariance=covariance,
                                             meta={"source": f"first {generated_images} images of {study}"})
    return reference, generated


def statistics_sizes(settings: dict) -> dict:
    """The `map_statistics` keywords in a pair-map job's settings (`Plan.pair_map_params`)."""
    return {key: settings[key] for key in ("reference_images", "generated_images", "covariance")}


def render_pair_map(detector: Any, reference: Statistics, generated: Statistics, generator: Any, chosen: PairsFile,
                    pair: Pair, *, figure: str | os.PathLike, numbers: str | os.PathLike, maps: str | os.PathLike,
                    sampling: Sampling = DEFAULT_SAMPLING) -> dict:
    """Absolute-weighting maps of PAIR: the figure, its numbers (strict JSON) and both raw maps (.npz).

    Returns the numbers written. GENERATOR is moved to the detector's device.
    """
    from fidlens.studies.heatmap import FidSensitivity

    sensitivity = FidSensitivity(detector, reference, generated, weighting="absolute")
    return _render_one(sensitivity, reference, generated, generator.to(sensitivity.device), chosen, pair,
                       figure=figure, numbers=numbers, maps=maps, sampling=sampling)


def render_pair_maps(detector: Any, reference: Statistics, generated: Statistics, generator: Any, chosen: PairsFile,
                     outdir: str | os.PathLike, *, sampling: Sampling = DEFAULT_SAMPLING) -> list[Path]:
    """Every pair's map into OUTDIR (``pair_BAD_GOOD.png`` + ``.json`` + ``.npz``); the figures, in pair order.

    One set-up for all pairs (the statistics' decompositions, the generator on its device): each
    pair's files equal what `render_pair_map` writes for it alone.
    """
    from fidlens.studies.heatmap import FidSensitivity

    sensitivity = FidSensitivity(detector, reference, generated, weighting="absolute")
    G = generator.to(sensitivity.device)
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    for pair in chosen.pairs:
        stem = folder / pair.stem
        _render_one(sensitivity, reference, generated, G, chosen, pair, figure=stem.with_suffix(".png"),
                    numbers=stem.with_suffix(".json"), maps=stem.with_suffix(".npz"), sampling=sampling)
        figures.append(stem.with_suffix(".png"))
    return figures


def _render_one(sensitivity: Any, reference: Statistics, generated: Statistics, G: Any, chosen: PairsFile,
                pair: Pair, *, figure: str | os.PathLike, numbers: str | os.PathLike, maps: str | os.PathLike,
                sampling: Sampling) -> dict:
    from fidlens.studies.heatmap import describe_setup
    from fidlens.studies.pairs.maps import (
        explain_pair,
        pair_numbers,
        save_pair_figure,
        swap_change,
        write_pair_maps,
    )

    bad, good = explain_pair(sensitivity, G, pair, chosen.probe_step, sampling=sampling)
    save_pair_figure(bad, good, pair, figure, title=f"{G.label} · pair {pair.bad} / {pair.good}",
                     subtitle=describe_setup(sensitivity, reference, generated))
    result = {"bad": str(pair.bad), "good": str(pair.good), "note": pair.note,
              "fid_with_bad": bad.fid_with_image, "fid_with_good": good.fid_with_image,
              "swap_change": swap_change(bad, good), "generated_images": generated.num_images,
              "weighting": "absolute", **pair_numbers(bad, good), "maps_file": Path(maps).name}
    write_pair_maps(bad, good, maps)
    print(strict_json(result), end="")
    write_json(numbers, result)
    return result
