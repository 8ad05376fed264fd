"""The numbers beside every figure: raw heatmap maps, shared pair scales, CSVs that hold what is plotted,
and JSON that strict parsers accept."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import write_images

from fidlens.metrics.frechet import frechet_distance
from fidlens.studies.heatmap import FidSensitivity, render_overlay, shared_limits
from fidlens.core.rawdata import strict_json, write_csv, write_json, write_npz
from fidlens.metrics.stats import Statistics


def strict_load(text: str):
    """json.loads that refuses NaN / Infinity, as strict parsers (JavaScript, jq, Go) do."""
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def stats():
    rng = np.random.default_rng(11)
    basis = rng.normal(size=(40, 2048)) * 0.3

    def make(n, shift):
        return Statistics.from_features(np.abs(rng.normal(size=(n, 40)) @ basis + shift
                                               + rng.normal(size=(n, 2048)) * 0.2))

    with pytest.warns(UserWarning):
        return make(200, 0.0), make(90, 0.15)


@pytest.fixture(scope="module")
def explained(random_inception, stats):
    reference, generated = stats
    images = np.random.default_rng(5).integers(0, 256, size=(3, 40, 36, 3), dtype=np.uint8)
    with_logits = [FidSensitivity(random_inception, reference, generated).explain(im) for im in images]
    # What a features-only detector gives: the same explanation without classes (one costly setup, not two).
    return with_logits, [replace(ex, top_classes=None) for ex in with_logits]


# -- the writers -------------------------------------------------------------------------------

def test_strict_json_writes_null_for_nan_and_infinity(tmp_path):
    data = {"a": float("nan"), "b": [1.0, float("-inf"), np.float64(2.5)], "c": np.int64(3), "d": np.array([0.5])}
    assert strict_load(strict_json(data)) == {"a": None, "b": [1.0, None, 2.5], "c": 3, "d": [0.5]}
    write_json(tmp_path / "x.json", data)
    assert strict_load((tmp_path / "x.json").read_text())["a"] is None
    with pytest.raises(ValueError, match="NaN"):
        strict_load(json.dumps({"a": float("nan")}))  # the check itself can fail


def test_csv_and_npz_writers_keep_full_precision(tmp_path):
    value = 1 / 3
    write_csv(tmp_path / "t.csv", [{"x": value, "y": float("nan"), "z": None}, {"x": 2, "y": "s"}], ["x", "y", "z"])
    rows = read_csv(tmp_path / "t.csv")
    assert float(rows[0]["x"]) == value and rows[0]["y"] == "" and rows[0]["z"] == "" and rows[1]["y"] == "s"
    write_npz(tmp_path / "a.npz", m=np.arange(4.0))
    assert np.load(tmp_path / "a.npz")["m"].dtype == np.float64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "t.csv"]  # no temp files left


# -- heatmaps ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_fid_without_the_image_is_the_generated_sets_fid(random_inception, stats, explained):
    reference, generated = stats
    direct = frechet_distance(reference.mu, reference.sigma, generated.mu, generated.sigma)
    for ex in explained[0]:
        assert ex.fid_without_image == pytest.approx(direct, rel=1e-10)
        assert ex.delta_fid == ex.fid_with_image - ex.fid_without_image
        assert ex.gradient_norm == pytest.approx(float(np.linalg.norm(ex.feature_gradient)))


@pytest.mark.slow
def test_single_heatmap_writes_its_raw_map_and_strict_numbers(tmp_path, explained):
    from fidlens.studies.heatmap_figures import write_heatmap_raw

    for name, ex in (("logits", explained[0][0]), ("plain", explained[1][0])):
        written = write_heatmap_raw(ex, tmp_path / name, label="seed 7", setup={"seed": 7, "odd": float("nan")})
        assert [p.name for p in written] == [f"{name}.npz", f"{name}.json"]
        raw = np.load(tmp_path / f"{name}.npz")
        np.testing.assert_array_equal(raw["map"], ex.cam)  # the map before any normalisation
        assert raw["map"].shape == (8, 8) and raw["map"].dtype == np.float64
        assert not (raw["map"].min() == 0 and raw["map"].max() == 1)
        np.testing.assert_array_equal(raw["feature_gradient"], ex.feature_gradient)
        numbers = strict_load((tmp_path / f"{name}.json").read_text())
        assert numbers["fid_with_image"] == ex.fid_with_image and numbers["delta_fid"] == ex.delta_fid
        assert numbers["fid_without_image"] == ex.fid_without_image
        assert numbers["gradient_norm"] == ex.gradient_norm and numbers["odd"] is None
        assert numbers["map_max"] == float(ex.cam.max()) and numbers["seed"] == 7
        if ex.top_classes is None:
            assert numbers["top_classes"] is None
        else:
            assert [t["class"] for t in numbers["top_classes"]] == [i for i, _ in ex.top_classes]


@pytest.mark.slow
def test_grid_csv_says_which_seed_is_in_which_tile(tmp_path, explained):
    from fidlens.studies.heatmap_figures import write_grid_raw

    exs = explained[0] + explained[1][:1]
    labels = ["seed 10", "seed 11", "seed 12", "seed 13"]
    write_grid_raw(exs, labels, 2, tmp_path / "g.csv", tmp_path / "g.npz")
    rows = read_csv(tmp_path / "g.csv")
    assert [(r["tile"], r["row"], r["col"], r["label"]) for r in rows] == [
        ("0", "0", "0", "seed 10"), ("1", "0", "1", "seed 11"), ("2", "1", "0", "seed 12"), ("3", "1", "1", "seed 13")]
    assert [float(r["delta_fid"]) for r in rows] == [ex.delta_fid for ex in exs]
    assert rows[0]["top1_class"] == str(exs[0].top_classes[0][0]) and rows[3]["top1_class"] == ""
    raw = np.load(tmp_path / "g.npz")
    assert list(raw["labels"]) == labels
    np.testing.assert_array_equal(raw["maps"], np.stack([ex.cam for ex in exs]))


@pytest.mark.slow
def test_heatmap_figures_render_with_colourbar_and_numbers(tmp_path, explained):
    from PIL import Image

    from fidlens.studies.heatmap_figures import numbers_line, save_heatmap_figure, save_heatmap_grid, signed

    ex = explained[1][0]
    save_heatmap_figure(ex, tmp_path / "one.png", title="t", subtitle="s")
    save_heatmap_grid(explained[1], ["a", "b", "c"], 1, 3, tmp_path / "grid.png", title="t", subtitle="s")
    assert Image.open(tmp_path / "grid.png").size[0] > Image.open(tmp_path / "one.png").size[0]
    line = numbers_line(ex)
    assert f"{ex.fid_with_image:.3f}" in line and signed(ex.delta_fid) in line
    assert signed(0.04123) == "+0.0412" and signed(-3.1234e-5) == "−3.12e-05"


# -- pair maps: one colour scale ---------------------------------------------------------------

def test_shared_limits_cover_both_maps_and_equal_values_get_equal_colours():
    weak, strong = np.full((8, 8), 1.0), np.full((8, 8), 1.0)
    weak[0, 0], strong[0, 0] = 2.0, 6.0
    assert shared_limits(weak, strong) == (1.0, 6.0)
    image = np.zeros((16, 16, 3), np.uint8)
    heat_weak_own, _ = render_overlay(weak, image)  # own scale: its 2.0 is the top colour
    heat_weak, overlay_weak = render_overlay(weak, image, limits=(1.0, 6.0))
    heat_strong, _ = render_overlay(strong, image, limits=(1.0, 6.0))
    # Far from the hot corner both maps hold 1.0: the same colour on the shared scale.
    np.testing.assert_allclose(heat_weak[-1, -1], heat_strong[-1, -1])
    assert heat_strong[0, 0].sum() > heat_weak[0, 0].sum()  # 6.0 is brighter than 2.0
    assert heat_weak_own[0, 0].sum() > heat_weak[0, 0].sum()  # separately normalised, 2.0 looked like 6.0
    assert overlay_weak.min() >= 0 and overlay_weak.max() <= 1
    with pytest.raises(Exception, match="at least one"):
        shared_limits()


@pytest.mark.slow
def test_pair_maps_use_one_scale_and_write_raw_maps(tmp_path, explained):
    from fidlens.generators.latents import LatentRef
    from fidlens.studies.pairs.maps import (
        pair_limits,
        pair_numbers,
        readable_note,
        save_pair_figure,
        write_pair_maps,
    )
    from fidlens.studies.pairs.spec import Pair

    bad, good = explained[1][0], explained[1][1]
    lo, hi = pair_limits(bad, good)
    assert lo == min(bad.cam.min(), good.cam.min()) and hi == max(bad.cam.max(), good.cam.max())
    write_pair_maps(bad, good, tmp_path / "pair_3_3~1.npz")
    raw = np.load(tmp_path / "pair_3_3~1.npz")
    np.testing.assert_array_equal(raw["bad_map"], bad.cam)
    np.testing.assert_array_equal(raw["good_map"], good.cam)
    assert list(raw["scale"]) == [lo, hi]
    numbers = strict_load(strict_json(pair_numbers(bad, good)))
    assert numbers["delta_fid_good"] == good.delta_fid and numbers["top_classes_bad"] is None
    assert numbers["map_scale_min"] == lo
    pair = Pair(LatentRef(3), LatentRef(3, 1), "face score no face → 6.87")
    assert readable_note(pair.note) == ("face detector (OpenCV Haar cascade; higher = more face-like): "
                                        "bad no face, good 6.87")
    assert readable_note("second mouth") == "note: second mouth"
    save_pair_figure(bad, good, pair, tmp_path / "pair.png", title="t", subtitle="s")
    assert (tmp_path / "pair.png").stat().st_size > 10_000


# -- the demo figure ---------------------------------------------------------------------------

def test_fid_vs_distortion_csv_holds_the_plotted_numbers(tmp_path):
    from fidlens.studies.demo import DemoSet, plot_fid_vs_distortion, write_table

    order = [DemoSet("comparison", "none", 0, 0.0), DemoSet("blur1", "blur", 1, 0.5), DemoSet("blur2", "blur", 2, 2.0),
             DemoSet("noise1", "noise", 1, 8.0)]
    fids = [53.0, 56.7, 132.5, 88.9]
    rows = [{"set": s.name, "distortion": s.distortion, "level": s.level, "strength": s.strength, "unit": "",
             "n_reference": 4, "n_images": 4, "fid": f, "kid_x1000": 1.5, "kid_std_x1000": float("nan"),
             "detector": "d.pt", "covariance": "unbiased"} for s, f in zip(order, fids)]
    write_table(rows, tmp_path / "t.csv")
    rng = np.random.default_rng(0)
    dirs = {s.name: write_images(tmp_path / s.name, [rng.integers(0, 255, (20, 16), dtype=np.uint8)] * 2)
            for s in order}
    plot_fid_vs_distortion(tmp_path / "t.csv", dirs, tmp_path / "f.png", out_csv=tmp_path / "f.csv")
    plotted = read_csv(tmp_path / "f.csv")
    assert [(r["panel"], r["set"], r["level"], float(r["fid"])) for r in plotted] == [
        ("blur", "comparison", "0", 53.0), ("blur", "blur1", "1", 56.7), ("blur", "blur2", "2", 132.5),
        ("noise", "comparison", "0", 53.0), ("noise", "noise1", "1", 88.9)]
    assert plotted[2]["strength"] == "2.0" and plotted[0]["kid_std_x1000"] == ""
    assert (tmp_path / "f.png").stat().st_size > 10_000


# -- resampling --------------------------------------------------------------------------------

def test_curves_drop_an_uncomputed_metric_and_say_so(tmp_path):
    from PIL import Image

    from fidlens.studies.resampling.figures import plot_curves, plotted_metrics

    nan = float("nan")
    rows = [{"iteration": i, "fid": 90.0 - i, "clip_fid": nan, "kid_x1000": 40.0 - i} for i in (0, 1, 10)]
    assert [k for k, _ in plotted_metrics(rows)] == ["fid", "kid_x1000"]
    with_clip = [dict(r, clip_fid=20.0 - r["iteration"]) for r in rows]
    assert [k for k, _ in plotted_metrics(with_clip)] == ["fid", "clip_fid", "kid_x1000"]
    plot_curves(rows, tmp_path / "two.png", title="t", floor=("clean", 53.0, 200), clip_note="CLIP-FID skipped: x")
    plot_curves(with_clip, tmp_path / "three.png", title="t")
    assert Image.open(tmp_path / "three.png").size[0] > Image.open(tmp_path / "two.png").size[0]


def test_pool_floor_is_the_best_single_sets_fid():
    from fidlens.metrics.frechet import ReferenceStatistics, mean_and_covariance
    from fidlens.studies.resampling.figures import pool_floor
    from fidlens.studies.resampling.modes import Mode
    from fidlens.studies.resampling.run import FeatureBank, RunInputs

    rng = np.random.default_rng(2)
    reals = FeatureBank(pool3=rng.normal(size=(60, 6)))
    pool = np.concatenate([rng.normal(size=(30, 6)) + 2.0, rng.normal(size=(30, 6)) + 0.1])
    groups = np.array(["far"] * 30 + ["near"] * 30)
    name, value, count = pool_floor(RunInputs(Mode("pre_logits"), reals, FeatureBank(pool3=pool, groups=groups)))
    direct = ReferenceStatistics(*mean_and_covariance(reals.pool3)).fid(*mean_and_covariance(pool[30:]))
    assert (name, count) == ("near", 30) and value == pytest.approx(direct, rel=1e-12)
    assert pool_floor(RunInputs(Mode("pre_logits"), reals, FeatureBank(pool3=pool))) is None


def test_weight_grids_say_how_many_they_show_and_list_their_tiles(tmp_path):
    from fidlens.studies.resampling.figures import grid_rows, grid_titles

    titles = grid_titles(800, 80, {"grid_resampled.png": 32, "grid_lowest.png": 32, "grid_highest.png": 32}, 800)
    assert titles["grid_lowest.png"].startswith("lowest-weighted 10 % (80 of 800 candidates): 32 shown")
    assert "evenly spread by rank" in titles["grid_highest.png"] and "32 of a draw of 800" in titles["grid_resampled.png"]
    assert grid_titles(45, 4, {"grid_resampled.png": 9, "grid_lowest.png": 4, "grid_highest.png": 4}, 9)[
        "grid_lowest.png"].startswith("lowest-weighted 8.89 % (4 of 45 candidates): 4 shown")
    w = np.array([0.0, 2.0, -1.0, 1.0])
    rows = grid_rows(np.array([1, 3, 0]), w, np.array(["a", "b", "a", "b"]), cols=2)
    assert [(r["tile"], r["row"], r["col"], r["candidate"], r["set"], r["rank_from_highest"]) for r in rows] == [
        (0, 0, 0, 1, "b", 1), (1, 0, 1, 3, "b", 2), (2, 1, 0, 0, "a", 3)]
    p = np.exp(w) / np.exp(w).sum()
    assert rows[0]["probability"] == pytest.approx(p[1]) and math.isclose(rows[2]["weight"], 0.0)


def test_a_run_writes_grid_csvs_beside_its_grids(tmp_path):
    from fidlens.studies.resampling.modes import Mode
    from fidlens.studies.resampling.run import FeatureBank, ResamplingRun, ResamplingSettings, RunInputs

    rng = np.random.default_rng(4)
    reals = FeatureBank(pool3=rng.normal(size=(40, 5)))
    pool = FeatureBank(pool3=np.concatenate([rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + 3]),
                       groups=np.array(["clean"] * 40 + ["bad"] * 40))
    inputs = RunInputs(Mode("pre_logits"), reals, pool, candidate_image=lambda i: np.zeros((6, 6, 3), np.uint8))
    settings = ResamplingSettings(iterations=2, lr=5.0, eval_every=1, eval_samples=50, eval_repeats=1,
                                  kid_subsets=2, kid_subset_size=20)
    ResamplingRun(inputs, settings, tmp_path, progress=False, log=lambda m: None).run()
    for name in ("grid_resampled", "grid_lowest", "grid_highest"):
        rows = read_csv(tmp_path / f"{name}.csv")
        assert (tmp_path / f"{name}.png").is_file() and 1 <= len(rows) <= 32
    lowest = read_csv(tmp_path / "grid_lowest.csv")
    weights = np.load(tmp_path / "best_weights.npy")
    assert [float(r["weight"]) for r in lowest] == [float(weights[int(r["candidate"])]) for r in lowest]
    assert len(lowest) == 8  # the lowest 10 % of 80 candidates, all shown
