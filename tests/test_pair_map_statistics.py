"""Pair maps use the heatmap study's statistics: the first 50,000 reals and 49,999 + 1 generated images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO

from fidlens.core.errors import FidlensError
from fidlens.metrics.frechet import mean_and_covariance
from fidlens.metrics.stats import FeatureSet
from fidlens.studies.pairs.map_run import map_statistics
from fidlens.studies.pairs.study_file import FORMAT, save_study
from fidlens.workflow.targets import load_plan


def _files(tmp_path, n_generated=12, n_reals=9, d=5):
    rng = np.random.default_rng(0)
    generated = rng.standard_normal((n_generated, d)).astype(np.float32)
    reals = rng.standard_normal((n_reals, d)).astype(np.float32)
    save_study({"pool3": generated, "selected": np.array([1, 4])}, {"format": FORMAT}, tmp_path / "study.npz")
    FeatureSet(reals, {"detector": "test", "num_images": n_reals}).save(tmp_path / "reals.npz")
    return generated, reals


def test_the_first_images_of_each_side_make_the_statistics(tmp_path):
    generated, reals = _files(tmp_path)
    ref, gen = map_statistics(tmp_path / "study.npz", tmp_path / "reals.npz", reference_images=6, generated_images=11)
    for stats, rows in ((ref, reals[:6]), (gen, generated[:11])):
        mu, sigma = mean_and_covariance(rows)
        np.testing.assert_array_equal(stats.mu, mu)
        np.testing.assert_array_equal(stats.sigma, sigma)
    assert (ref.num_images, gen.num_images) == (6, 11)
    assert "first 11 images" in gen.meta["source"] and "first 6 images" in ref.meta["source"]
    # a reference set smaller than asked for (MetFaces: 1,336 < 50,000) gives all of it
    ref_all, _ = map_statistics(tmp_path / "study.npz", tmp_path / "reals.npz", reference_images=50000,
                                generated_images=11)
    assert ref_all.num_images == len(reals)
    with pytest.raises(FidlensError, match="ask for 13 generated images; .* holds 12"):
        map_statistics(tmp_path / "study.npz", tmp_path / "reals.npz", reference_images=6, generated_images=13)


def test_the_plans_ask_for_the_studys_n_minus_one_and_fifty_thousand_reals():
    demo = load_plan(REPO / "config" / "demo.yaml", home="/fidlens-home")
    params = demo.pair_map_params("demo")
    assert (params["reference_images"], params["generated_images"]) == (50000, demo.pairs_study_settings("demo")["num_images"] - 1)
    assert demo.pair_map_reference_features("demo") == "results/demo/features/reference.npz"
    paper = load_plan(REPO / "config" / "paper.yaml", home="/fidlens-home")
    for model in paper.pairs:
        params = paper.pair_map_params(model)
        assert (params["reference_images"], params["generated_images"]) == (50000, 49999), model
