"""The per-set metrics beyond one FID as the workflow makes them: attribution files, fid_ci.csv,
fid_vs_inverse_n.*, prdc.csv, and the plan's paths for them (fidlens.workflow.beyond_targets).

Every number is checked against an independent computation: brute-force leave-one-out FID,
the single-set bootstrap, the FID∞ fit of the metric module, a direct PRDC count.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from conftest import REPO, write_images

from fidlens.core.errors import FidlensError
from fidlens.metrics.bootstrap import bootstrap_fid, bootstrap_fid_sets
from fidlens.metrics.frechet import frechet_distance, mean_and_covariance
from fidlens.metrics.stats import FeatureSet, Statistics
from fidlens.workflow.config import ConfigError, prepare
from fidlens.workflow.targets import Plan, load_plan

HOME = "/fidlens-home"
SPACE = {"detector": "made-up.pt", "detector_spec": {"name": "inception", "weights_name": "made-up.pt"}}


def _features(path, x, **meta):
    FeatureSet(features=np.asarray(x, np.float32), meta={**SPACE, "num_images": len(x), **meta}).save(path)
    return path


def _sets(tmp_path, rng, d=6, sizes=(40, 30, 35)):
    ref = _features(tmp_path / "ref.npz", rng.normal(size=(50, d)))
    sets = {f"s{i}": _features(tmp_path / f"s{i}.npz", rng.normal(loc=0.3 * i, size=(n, d)))
            for i, n in enumerate(sizes)}
    return ref, sets


# --- attribution ------------------------------------------------------------------------------


def test_set_attribution_writes_brute_force_ranking_and_a_captioned_grid(tmp_path, rng):
    from fidlens.studies.attribution_run import run_set_attribution

    n, d = 12, 5
    x = rng.normal(size=(n, d)).astype(np.float32)
    images = write_images(tmp_path / "imgs", [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(n)])
    feats = _features(tmp_path / "f.npz", x)
    ref_x = rng.normal(loc=0.2, size=(40, d))
    Statistics.from_features(ref_x, covariance="unbiased", meta=dict(SPACE)).save(tmp_path / "ref.npz")
    outputs = {"ranking": tmp_path / "o/ranking.csv", "summary": tmp_path / "o/attribution.json",
               "grid": tmp_path / "o/grid.png"}
    run_set_attribution(feats, tmp_path / "ref.npz", outputs, set_label="mine", top=3, images=images,
                        log=lambda message: None)
    saved = Statistics.load(tmp_path / "ref.npz")
    mu_r, sigma_r = saved.mu, saved.sigma
    x64 = x.astype(np.float64)
    full = frechet_distance(mu_r, sigma_r, *mean_and_covariance(x64))
    brute = np.array([frechet_distance(mu_r, sigma_r, *mean_and_covariance(np.delete(x64, i, axis=0))) - full
                      for i in range(n)])
    rows = list(csv.DictReader(io.StringIO(outputs["ranking"].read_text())))
    assert [int(r["rank"]) for r in rows] == list(range(1, n + 1))
    got = np.array([float(r["delta_fid"]) for r in sorted(rows, key=lambda r: int(r["index"]))])
    np.testing.assert_allclose(got, brute, rtol=1e-8, atol=1e-9)
    assert rows[0]["name"] == f"img{int(np.argmin(brute)):03d}.png"
    summary = json.loads(outputs["summary"].read_text())
    assert summary["set"] == "mine" and summary["feature_space"] == "Inception-v3 pool3 (made-up.pt)"
    assert summary["heatmaps"].startswith("no heatmaps: an image set")
    assert [r["index"] for r in summary["most_harmful"]] == [int(i) for i in np.argsort(brute)[:3]]
    assert outputs["grid"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_set_attribution_refuses_images_that_do_not_match_the_features(tmp_path, rng):
    from fidlens.studies.attribution_run import run_set_attribution

    images = write_images(tmp_path / "imgs", [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(5)])
    feats = _features(tmp_path / "f.npz", rng.normal(size=(6, 3)))
    Statistics.from_features(rng.normal(size=(20, 3)), meta=dict(SPACE)).save(tmp_path / "ref.npz")
    with pytest.raises(FidlensError, match="holds 5 images"):
        run_set_attribution(feats, tmp_path / "ref.npz", {}, set_label="x", images=images)


def test_grid_shows_overlays_and_footer_only_when_asked():
    from fidlens.studies.attribution_grid import render_attribution_grid

    delta = np.array([0.3, -0.2, 0.1, -0.5])
    ranks = np.array([4, 2, 3, 1])
    image = lambda i: np.full((8, 8, 3), 40 * i, np.uint8)
    plain = render_attribution_grid(image, delta, ranks, ["a", "b", "c", "d"], 2)
    again = render_attribution_grid(image, delta, ranks, ["a", "b", "c", "d"], 2)
    wide = render_attribution_grid(image, delta, ranks, ["a", "b", "c", "d"], 2, overlay_at=image, footer="why")
    assert plain == again and plain != wide


# --- bootstrap table --------------------------------------------------------------------------


@pytest.mark.parametrize("resample_reference", [False, True])
def test_shared_bootstrap_equals_one_set_at_a_time(rng, resample_reference):
    ref = rng.normal(size=(30, 4))
    sets = [rng.normal(size=(25, 4)), rng.normal(loc=0.5, size=(20, 4))]
    shared = bootstrap_fid_sets(ref, sets, resamples=20, seed=3, resample_reference=resample_reference)
    for x, interval in zip(sets, shared):
        alone = bootstrap_fid(ref, x, resamples=20, seed=3, resample_reference=resample_reference)
        assert interval.estimate == alone.estimate
        np.testing.assert_allclose(interval.replicates, alone.replicates, rtol=1e-10)
        assert interval.low == pytest.approx(alone.low, rel=1e-10)


def test_fid_ci_rows_name_each_set_and_agree_with_the_library(tmp_path, rng):
    from fidlens.metrics.bootstrap import bootstrap_kid
    from fidlens.studies.metric_tables import fid_ci_rows, rows_csv_text

    ref, sets = _sets(tmp_path, rng)
    rows = fid_ci_rows(ref, sets, resamples=30, seed=1, level=0.9)
    assert [row["set"] for row in rows] == list(sets)
    ref_x = FeatureSet.load(ref).features
    for row, path in zip(rows, sets.values()):
        x = FeatureSet.load(path).features
        fid = bootstrap_fid(ref_x, x, resamples=30, seed=1, level=0.9)
        kid = bootstrap_kid(ref_x, x, resamples=30, seed=1, level=0.9)
        assert row["fid"] == fid.estimate and row["fid_low"] == pytest.approx(fid.low, rel=1e-10)
        assert row["kid_x1000"] == pytest.approx(1000 * kid.estimate, rel=1e-12)
        assert row["fid_low"] <= row["fid"] <= row["fid_high"] or row["fid_bias"] != 0
        assert row["feature_space"] == "Inception-v3 pool3 (made-up.pt)" and row["n_images"] == len(x)
    parsed = list(csv.DictReader(io.StringIO(rows_csv_text(rows))))
    assert float(parsed[1]["fid"]) == rows[1]["fid"]  # round-trip precision


def test_tables_refuse_sets_from_another_feature_space(tmp_path, rng):
    from fidlens.studies.metric_tables import prdc_rows

    ref, _ = _sets(tmp_path, rng, sizes=(20,))
    other = tmp_path / "other.npz"
    FeatureSet(features=rng.normal(size=(20, 6)).astype(np.float32),
               meta={"num_images": 20, "detector": "ViT-B-32.pt", "detector_spec": {"name": "clip"}}).save(other)
    with pytest.raises(FidlensError, match="not comparable"):
        prdc_rows(ref, {"clip": other})


# --- PRDC table -------------------------------------------------------------------------------


def test_prdc_rows_match_a_direct_count_and_carry_the_note(tmp_path, rng):
    from fidlens.studies.metric_tables import prdc_rows

    ref, sets = _sets(tmp_path, rng, d=3, sizes=(25,))
    (row,) = prdc_rows(ref, sets, k_pr=3, k_dc=5)
    real = FeatureSet.load(ref).features.astype(np.float64)
    fake = FeatureSet.load(sets["s0"]).features.astype(np.float64)
    dist = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    rr, ff, fr = dist(real, real), dist(fake, fake), dist(fake, real)
    r3 = np.sort(rr, axis=1)[:, 3]  # column 0 is the point itself
    r5 = np.sort(rr, axis=1)[:, 5]
    f3 = np.sort(ff, axis=1)[:, 3]
    assert row["precision"] == pytest.approx((fr <= r3[None, :]).any(axis=1).mean())
    assert row["recall"] == pytest.approx((f3[None, :] >= fr.T).any(axis=1).mean())
    assert row["density"] == pytest.approx((fr < r5[None, :]).sum() / (5 * len(fake)))
    assert row["coverage"] == pytest.approx((fr < r5[None, :]).any(axis=0).mean())
    assert "not comparable" in row["note"] and row["feature_space"] in row["note"]


# --- FID∞ outputs -----------------------------------------------------------------------------


def test_fid_infinity_outputs_hold_the_fit_and_the_scaled_grid_note(tmp_path, rng):
    from fidlens.metrics.fid_infinity import fid_infinity
    from fidlens.studies.fid_infinity_run import extrapolate_sets, write_outputs

    ref, sets = _sets(tmp_path, rng, d=4, sizes=(120,))
    results, space = extrapolate_sets(ref, sets, points=5, seed=2)
    outputs = {"figure": tmp_path / "f.png", "points": tmp_path / "f.csv", "fits": tmp_path / "f.json"}
    write_outputs(results, outputs, reference=str(ref), space=space, covariance="unbiased")
    direct = fid_infinity(FeatureSet.load(ref).features, FeatureSet.load(sets["s0"]).features, points=5, seed=2)
    fits = json.loads(outputs["fits"].read_text())
    entry = fits["sets"]["s0"]
    assert entry["fid_infinity"] == direct.fid.intercept and entry["kid_infinity"] == direct.kid.intercept
    assert entry["fid"]["sizes"] == direct.fid.sizes.tolist() and len(entry["fid"]["residuals"]) == 5
    assert any("fewer than the 50000" in note for note in entry["notes"])
    assert fits["feature_space"] == space
    rows = list(csv.DictReader(io.StringIO(outputs["points"].read_text())))
    fid_rows = [r for r in rows if r["metric"] == "FID"]
    assert [int(r["n"]) for r in fid_rows] == direct.fid.sizes.tolist()
    np.testing.assert_allclose([float(r["fitted"]) + float(r["residual"]) for r in fid_rows], direct.fid.values)
    assert outputs["figure"].read_bytes()[:4] == b"\x89PNG"


# --- the plan ---------------------------------------------------------------------------------


def _config(**sections) -> dict:
    config = {"run": "t", "demo": {"enabled": True}, "generators": {"demo": {"network": "ppca-demo"}}, **sections}
    prepare(config)
    return config


def test_a_config_without_these_sections_plans_none_of_their_files():
    plan = Plan(_config(), home=HOME)
    assert plan.beyond_targets() == []
    for name in ("paper.yaml", "config.yaml"):
        assert load_plan(REPO / "config" / name, home=HOME).beyond_targets() == []


def test_plan_names_files_inputs_and_params_of_each_section():
    generated = {"generator": "demo", "num_images": 150, "latent_seed": 4}
    plan = Plan(_config(attribution={"sets": ["comparison", generated], "top": 5},
                        fid_ci={"sets": ["blur1"], "resamples": 50}, fid_infinity={"sets": [generated]},
                        prdc={"sets": ["noise2"], "reference": "comparison"}), home=HOME)
    assert plan.beyond_targets() == [
        "results/t/attribution/comparison/ranking.csv", "results/t/attribution/comparison/attribution.json",
        "results/t/attribution/comparison/grid.png", "results/t/attribution/demo_n150_z4/ranking.csv",
        "results/t/attribution/demo_n150_z4/attribution.json", "results/t/attribution/demo_n150_z4/grid.png",
        "results/t/tables/fid_ci.csv", "results/t/figures/fid_vs_inverse_n.png",
        "results/t/figures/fid_vs_inverse_n.csv", "results/t/figures/fid_vs_inverse_n.json",
        "results/t/tables/prdc.csv"]
    assert all(t in plan.all_targets() for t in plan.beyond_targets())
    images = plan.attribution_inputs("comparison")
    assert images == {"features": "results/t/features/comparison.npz", "reference": "results/t/stats/reference.npz",
                      "images": "results/t/data/comparison"}
    gen = plan.attribution_inputs("demo_n150_z4")
    assert gen["features"] == "results/t/generated/demo/features_n150_z4.npz"
    assert gen["network"] == "results/t/generators/demo.pt" and gen["weights"].startswith(HOME)
    params = plan.attribution_params("demo_n150_z4")
    assert params["top"] == 5 and params["generated"]["latent_seed"] == 4 and params["heatmaps"] is True
    assert plan.attribution_params("comparison")["generated"] is None
    assert plan.beyond_inputs("prdc") == {"reference": "results/t/features/comparison.npz",
                                          "sets": ["results/t/features/noise2.npz"]}
    assert plan.beyond_params("fid_ci")["settings"]["resamples"] == 50
    assert plan.beyond_params("fid_ci")["labels"] == ["blur1"]


@pytest.mark.parametrize("sections, message", [
    ({"prdc": {"sets": ["nope"]}}, "config prdc.sets\\[0\\]: 'nope' is not a known image set"),
    ({"fid_ci": {"sets": [{"generator": "gan", "num_images": 10}]}}, "fid_ci.sets\\[0\\].generator: 'gan'"),
    ({"fid_infinity": {"sets": [{"generator": "demo", "num_images": 99}]}}, "FID∞ needs at least 100 images"),
    ({"attribution": {"sets": ["blur1", "blur1"]}}, "'blur1' is named twice"),
    ({"prdc": {"sets": ["blur1"], "reference": "elsewhere"}}, "prdc.reference: 'elsewhere'"),
])
def test_plan_refuses_names_that_point_at_nothing(sections, message):
    plan = Plan(_config(**sections), home=HOME)
    with pytest.raises(ConfigError, match=message):
        plan.beyond_targets()


def test_schema_refuses_a_malformed_set():
    with pytest.raises(ConfigError, match=r"fid_ci\.sets"):
        _config(fid_ci={"sets": [{"generator": "demo"}]})


def test_demo_config_runs_these_on_the_orl_sets_and_the_demo_generator():
    from fidlens.workflow.targets import demo_plan

    plan = demo_plan(home=HOME)
    labels = {section: list(plan.beyond_sets(section)) for section in ("attribution", "fid_ci", "fid_infinity", "prdc")}
    assert "comparison" in labels["attribution"] and "demo_n99_z0" in labels["attribution"]
    assert "demo_n99_z0" in labels["prdc"] and labels["fid_infinity"]
    # the generated set is the heatmap study's: no extra generation or Inception pass
    assert plan.beyond_features("attribution", "demo_n99_z0") == plan.heatmap_generated_stats("demo").replace(
        "stats_", "features_")


# --- report captions ----------------------------------------------------------------------------

BEYOND_CAPTIONS = {"attribution_images": "attribution_ranking.rst", "attribution_generated": "attribution_grid.rst",
                   "fid_ci_table": "fid_ci.rst", "fid_vs_inverse_n": "fid_vs_inverse_n.rst", "prdc_table": "prdc.rst"}


def test_captions_render_for_the_demo_and_say_what_was_computed():
    from test_report import render_caption

    from fidlens.workflow.targets import demo_plan

    plan = demo_plan(home=HOME)
    config = plan.config
    texts = {}
    for label in plan.beyond_sets("attribution"):
        params = {"attribution": plan.attribution_params(label)}
        for caption in ("attribution_ranking.rst", "attribution_grid.rst"):
            texts[(caption, label)] = render_caption(caption, "attribution_x", params, {"set": label}, config)
    for rule, section in (("fid_ci_table", "fid_ci"), ("fid_vs_inverse_n", "fid_infinity"), ("prdc_table", "prdc")):
        params = plan.beyond_params(section)
        texts[rule] = render_caption(BEYOND_CAPTIONS[rule], rule, params, {}, config)
    for key, text in texts.items():
        assert "{{" not in text and "{%" not in text and len(text) > 250, key
        assert "rule " in text and "provenance" in text, key
    assert "an image set, and no generator" in texts[("attribution_grid.rst", "comparison")]
    assert "turned off in the config" in texts[("attribution_grid.rst", "demo_n99_z0")]
    assert "RandomState(0).randn(99, z_dim)" in texts[("attribution_ranking.rst", "demo_n99_z0")]
    assert "Not comparable with published values" in texts["prdc_table"]
    assert "200 resamples" in texts["fid_ci_table"] and "comparison, demo_n99_z0" in texts["fid_ci_table"]
    assert "linspace(5000, 50000)" in texts["fid_vs_inverse_n"]


def test_reported_outputs_of_the_beyond_rules_point_at_existing_captions():
    import re

    text = (REPO / "rules" / "beyond.smk").read_text()
    for caption in set(BEYOND_CAPTIONS.values()):
        assert (REPO / "report" / caption).is_file()
        assert f'caption="../report/{caption}"' in text
    assert len(re.findall(r"report\(", text)) == 8  # ranking and grid twice, two tables, the figure, pairs control
    assert 'caption="../report/pairs_control.rst"' in text


# --- a generated set: tiles re-rendered from the latents of the features ---------------------------


def test_generated_tiles_are_the_images_the_features_came_from(tmp_path):
    import torch
    from PIL import Image

    from fidlens.detectors.registry import load_detector
    from fidlens.generators.generate import generated_features
    from fidlens.generators.load import load_generator
    from fidlens.generators.ppca import fit_ppca
    from fidlens.studies.attribution_run import GeneratedSet, _generated_tiles, run_set_attribution

    faces = tmp_path / "faces"
    faces.mkdir()
    for subject in (1, 2, 3):
        for path in sorted((REPO / "data" / "orl_faces" / f"s{subject}").glob("*.pgm")):
            Image.open(path).save(faces / f"s{subject}_{path.stem}.png")
    network = tmp_path / "g.pt"
    fit_ppca(faces, z_dim=6, resolution=16).save(network)
    spec = {"name": "pixels", "weights": "4"}
    detector = load_detector(spec, device="cpu")
    G = load_generator(network)
    x = generated_features(G, detector, 12, 5, progress=False)["features"]
    meta = {"detector": detector.weights_name, "detector_spec": {"name": "pixels"}, "num_images": 12}
    FeatureSet(features=x, meta=meta).save(tmp_path / "f.npz")
    Statistics.from_features(x[::-1] + 0.05, meta=meta).save(tmp_path / "ref.npz")
    generated = GeneratedSet(str(network), 12, 5, {"truncation_psi": 1.0, "noise_mode": "const"})
    images, overlays, note = _generated_tiles(generated, [7, 2], detector_spec=spec, device="cpu",
                                              reference_stats=str(tmp_path / "ref.npz"),
                                              set_features=FeatureSet.load(tmp_path / "f.npz"), weighting="squared",
                                              heatmaps=True, log=lambda message: None)
    for i in (7, 2):  # the tile's image gives back row i of the set's features
        again = detector.features([torch.from_numpy(images[i]).permute(2, 0, 1)])["features"][0]
        np.testing.assert_allclose(np.asarray(again), x[i], rtol=1e-6)
    assert overlays is None and "has no spatial map" in note
    outputs = {"ranking": tmp_path / "r.csv", "summary": tmp_path / "s.json", "grid": tmp_path / "g.png"}
    run_set_attribution(tmp_path / "f.npz", tmp_path / "ref.npz", outputs, set_label="g_n12_z5", top=2,
                        generated=generated, detector_spec=spec, device="cpu", heatmaps=False, log=lambda m: None)
    summary = json.loads(outputs["summary"].read_text())
    assert summary["feature_space"] == "pixels (pixels-grey-4x4)" and "turned off" in summary["heatmaps"]
    assert summary["most_harmful"][0]["name"].startswith("z5[")


def test_pairs_control_is_planned_only_where_configured_and_its_caption_names_the_detector():
    from test_report import render_caption

    from fidlens.workflow.targets import demo_plan

    plan = demo_plan(home=HOME)
    assert plan.pairs_control_models() == ["demo"]
    assert plan.pairs_control_outputs("demo") == {"table": "results/demo/pairs/demo/control_fids.csv",
                                                  "row": "results/demo/pairs/demo/control_row.json"}
    inputs = plan.pairs_control_inputs("demo")
    assert inputs == {"study": "results/demo/pairs/demo/study.npz", "network": "results/demo/generators/demo.pt",
                      "reference": "results/demo/data/reference"}  # pixels: no weights file
    params = plan.pairs_control_params("demo")
    assert params["detector"] == {"name": "pixels", "weights": "default"}
    text = render_caption("pairs_control.rst", "pairs_control", {"control": params}, {"model": "demo"}, plan.config)
    assert "detector pixels" in text and "area-averaged" in text and "rule pairs_control" in text
    config = _config(pairs={"m": {"generator": "demo", "reference": "reference",
                                  "control_detector": {"name": "clip", "weights": "/w/clip.pt"}}})
    clip = Plan(config, home=HOME)
    assert clip.pairs_control_inputs("m")["weights"] == "/w/clip.pt"
    assert clip.pairs_control_outputs("m")["table"] in clip.all_targets()
    assert Plan(_config(pairs={"m": {"generator": "demo", "reference": "reference"}}), home=HOME).beyond_targets() == []


def test_a_heatmap_study_names_its_generated_set():
    config = _config(heatmaps={"demo": {"reference": "reference", "num_generated": 39, "latent_seed": 3}},
                     attribution={"sets": [{"heatmaps": "demo"}]}, prdc={"sets": [{"heatmaps": "nope"}]})
    plan = Plan(config, home=HOME)
    assert list(plan.beyond_sets("attribution")) == ["demo_n39_z3"]
    assert plan.beyond_features("attribution", "demo_n39_z3") == plan.heatmap_generated_stats("demo").replace(
        "stats_", "features_")
    with pytest.raises(ConfigError, match=r"prdc\.sets\[0\]\.heatmaps: 'nope' is not a known heatmap study"):
        plan.beyond_sets("prdc")


def test_fid_infinity_says_which_sets_are_too_small_instead_of_failing(tmp_path, rng):
    from fidlens.studies.fid_infinity_run import extrapolate_sets, too_small, write_outputs

    ref, sets = _sets(tmp_path, rng, d=3, sizes=(30, 120))
    skipped = too_small(sets)
    assert list(skipped) == ["s0"] and "30 images, fewer than the 100" in skipped["s0"]
    results, space = extrapolate_sets(ref, {k: v for k, v in sets.items() if k not in skipped}, points=4)
    outputs = {"figure": tmp_path / "f.png", "points": tmp_path / "f.csv", "fits": tmp_path / "f.json"}
    write_outputs(results, outputs, reference=str(ref), space=space, covariance="unbiased", skipped=skipped)
    fits = json.loads(outputs["fits"].read_text())
    assert list(fits["sets"]) == ["s1"] and fits["skipped"] == skipped
    write_outputs({}, outputs, reference=str(ref), space=space, covariance="unbiased", skipped=skipped)
    assert json.loads(outputs["fits"].read_text())["sets"] == {} and outputs["figure"].stat().st_size > 1000
