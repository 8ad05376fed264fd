"""The good/bad pairs study: pairs files, d_i and the selection, replacement, Table 2's sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import ORL

from fidlens.core.errors import FidlensError
from fidlens.generators.generate import synthesize_uint8
from fidlens.generators.ppca import fit_ppca
from fidlens.studies.pairs.auto import choose_pairs_by_faces
from fidlens.generators.latents import LatentRef, latent_z, parse_latent, probe_offsets
from fidlens.studies.pairs.selection import PairDirection, kept_indices, select_smallest, selection_size
from fidlens.studies.pairs.spec import PairsFile, PairsFileError, load_pairs, parse_pairs
from fidlens.studies.pairs.study import StudySettings, run_study, study_meta
from fidlens.studies.pairs.study_file import Study, save_study
from fidlens.studies.pairs.table import render_markdown, study_row, table_rows
from fidlens.metrics.stats import Statistics

# --- latent names ---------------------------------------------------------------------------


def test_latent_names_round_trip_and_probes_continue_the_seed_stream():
    assert parse_latent(12) == LatentRef(12) and parse_latent(" 12~57 ") == LatentRef(12, 57)
    assert str(LatentRef(12, 57)) == "12~57" and LatentRef(7, 3).file_stem == "0007p3"
    z = latent_z(LatentRef(5), 8, 0.5)
    np.testing.assert_array_equal(z, np.random.RandomState(5).randn(1, 8))
    probe = latent_z(LatentRef(5, 3), 8, 0.25)
    np.testing.assert_allclose(probe, z + 0.25 * np.random.RandomState(5).randn(4, 8)[3:4], rtol=0, atol=0)
    np.testing.assert_array_equal(probe_offsets(5, 10, 8)[2], probe_offsets(5, 3, 8)[2])  # independent of K


@pytest.mark.parametrize("value", ["abc", "12~0", "-3", "1.5", 1.5, True, None, "12~", "~3", "4294967296"])
def test_bad_latent_names_are_refused(value):
    with pytest.raises(FidlensError):
        parse_latent(value)


# --- pairs files ----------------------------------------------------------------------------


def test_pairs_file_round_trip(tmp_path):
    data = {"model": "ffhq", "probe_step": 0.3, "pairs": [{"bad": 12, "good": "12~57", "note": "two mouths"},
                                                           {"bad": "408", "good": 1093}]}
    pairs = parse_pairs(data)
    assert pairs.bad == [LatentRef(12), LatentRef(408)] and pairs.good == [LatentRef(12, 57), LatentRef(1093)]
    assert pairs.pairs[0].stem == "pair_0012_0012p57" and pairs.probe_step == 0.3
    pairs.save(tmp_path / "p.yaml")
    again = load_pairs(tmp_path / "p.yaml")
    assert again.pairs == pairs.pairs and again.model == "ffhq" and again.probe_step == 0.3


@pytest.mark.parametrize(("data", "message"), [
    ({"pairs": [{"bad": "x1", "good": 3}]}, "cannot read latent 'x1'"),
    ({"pairs": [{"bad": 1, "good": 2}, {"bad": 1, "good": 3}]}, "repeats bad latent 1"),
    ({"pairs": [{"bad": 1, "good": "1~4"}, {"bad": 2, "good": "1~4"}]}, "repeats good latent 1~4"),
    ({"pairs": [{"bad": 7, "good": 7}]}, "names 7 as both bad and good"),
    ({"pairs": [{"bad": 1, "good": 2}, {"bad": 2, "good": 3}]}, "bad in one pair and good in another"),
    ({"pairs": [{"bad": 1}]}, "has no 'good'"),
    ({"pairs": [{"bad": 1, "good": 2, "nots": ""}]}, "unknown key"),
    ({"pairs": []}, "non-empty list"),
    ({"pairs": [[1, 2]]}, "must be a mapping"),
    ({"pairs": [{"bad": 1, "good": 2}], "probe_step": -1}, "probe_step"),
    ({"pair": [{"bad": 1, "good": 2}]}, "unknown key"),
    ([1, 2], "expected a mapping"),
])
def test_pairs_file_mistakes_are_named(data, message):
    with pytest.raises(PairsFileError, match=message):
        parse_pairs(data, "demo.yaml")


def test_unreadable_pairs_files(tmp_path):
    with pytest.raises(PairsFileError, match="does not exist"):
        load_pairs(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("pairs: [{bad: 1, good: 2}\n")
    with pytest.raises(PairsFileError, match="not valid YAML"):
        load_pairs(tmp_path / "broken.yaml")


# --- d_i, selection, replacement --------------------------------------------------------------

W_BAD = np.array([[0.0, 0.0], [2.0, 0.0]])  # mean (1, 0)
W_GOOD = np.array([[0.0, 4.0], [2.0, 4.0]])  # mean (1, 4)


def test_d_follows_the_formula_on_hand_made_ws():
    direction = PairDirection.from_pairs(W_BAD, W_GOOD)
    np.testing.assert_array_equal(direction.mean_bad, [1, 0])
    np.testing.assert_array_equal(direction.step, [0, 4])
    w = np.array([[1, 0], [1, 4], [1, 2], [5, 0], [1, -3]], dtype=float)
    expected = [0 - 4, 4 - 0, 2 - 2, 4 - math.sqrt(32), 3 - 7]
    np.testing.assert_allclose(direction.scores(w), expected, rtol=1e-15)


def test_selection_takes_the_smallest_d_nearest_the_bad_mean():
    direction = PairDirection.from_pairs(W_BAD, W_GOOD)
    heights = np.array([3.0, 0.2, 2.0, 0.5, 4.0, 0.1, 1.0, 3.5, 2.5, 1.5])  # w = (1, h), 0 ≤ h ≤ 4: d = 2h − 4
    d = direction.scores(np.stack([np.ones(10), heights], axis=1))
    np.testing.assert_allclose(d, 2 * heights - 4)
    selected = select_smallest(d, 0.3)
    np.testing.assert_array_equal(selected, [5, 1, 3])  # the three lowest, smallest d first
    np.testing.assert_array_equal(kept_indices(10, selected), [0, 2, 4, 6, 7, 8, 9])
    assert selection_size(50_000, 0.015) == 750


def test_selection_ties_and_limits():
    np.testing.assert_array_equal(select_smallest(np.zeros(10), 0.2), [0, 1])
    for n, fraction in ((10, 0.01), (10, 0.99), (10, 0.0), (10, 1.0)):
        with pytest.raises(FidlensError):
            selection_size(n, fraction)
    with pytest.raises(FidlensError, match="NaN"):
        PairDirection.from_pairs(np.array([[np.nan, 0.0]]), W_GOOD)
    with pytest.raises(FidlensError, match="width"):
        PairDirection.from_pairs(W_BAD, np.ones((2, 3)))


def test_replacement_adds_the_pair_step_on_every_layer():
    direction = PairDirection.from_pairs(W_BAD, W_GOOD)
    ws = torch.arange(3 * 4 * 2, dtype=torch.float32).reshape(3, 4, 2)
    replaced = direction.replace(ws)
    assert replaced.dtype == torch.float32
    torch.testing.assert_close(replaced - ws, torch.tensor([0.0, 4.0]).expand(3, 4, 2), rtol=0, atol=0)
    with pytest.raises(FidlensError):
        direction.replace(torch.zeros(3, 2))


# --- Table 2's sets on synthetic features --------------------------------------------------------


def _naive_fid(reference: np.ndarray, features: np.ndarray) -> float:
    """An independent FID: float64 numpy covariances and scipy's sqrtm."""
    mu1, mu2 = reference.mean(0), features.mean(0)
    s1, s2 = np.cov(reference, rowvar=False), np.cov(features, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _synthetic_study(rng, delete_mode: str) -> tuple[Study, np.ndarray]:
    """60 generated 8-d features, 12 of them selected: every set has a full-rank covariance."""
    n, k = 60, 12
    make = lambda count, shift: rng.normal(size=(count, 8)) + shift
    reference = make(80, 0.0)
    arrays = {"pool3": make(n, 0.4).astype(np.float32), "faces": rng.random(n) < 0.7,
              "selected": rng.permutation(n)[:k], "d": rng.normal(size=n)}
    arrays["pool3_replaced"] = make(k, 0.1).astype(np.float32)
    arrays["faces_replaced"] = rng.random(k) < 0.9
    if delete_mode == "refill":
        arrays["pool3_refill"] = make(k, 0.2).astype(np.float32)
        arrays["faces_refill"] = np.ones(k, dtype=bool)
    meta = {"format": "fidlens-pairs-study-1", "face_detector": "test", "num_pairs": 3,
            "settings": {"fraction": 0.2}}
    return Study(arrays, meta), reference


@pytest.mark.parametrize("delete_mode", ["shrink", "refill"])
def test_table_columns_follow_their_definitions(rng, delete_mode):
    study, reference = _synthetic_study(rng, delete_mode)
    a, sel = study.arrays, study.selected
    ref_stats = Statistics.from_features(reference)
    row = study_row(study, ref_stats)
    replaced = a["pool3"].astype(np.float64).copy()
    replaced[sel] = a["pool3_replaced"]
    kept = np.setdiff1d(np.arange(60), sel)
    deleted = a["pool3"][kept].astype(np.float64)
    if delete_mode == "refill":
        deleted = np.concatenate([deleted, a["pool3_refill"]])
    for column, features in (("FID", a["pool3"]), ("FID_Replace", replaced), ("FID_Delete", deleted),
                             ("FID_Sub_Good", a["pool3_replaced"]), ("FID_Sub_Bad", a["pool3"][sel])):
        assert row[column] == pytest.approx(_naive_fid(reference, features.astype(np.float64)), rel=1e-9), column
    faces_replaced = a["faces"].copy()
    faces_replaced[sel] = a["faces_replaced"]
    assert row["face_rate"] == pytest.approx(a["faces"].mean())
    assert row["face_rate_Replace"] == pytest.approx(faces_replaced.mean())
    assert row["face_rate_Sub_Bad"] == pytest.approx(a["faces"][sel].mean())
    assert row["num_delete_set"] == (60 if delete_mode == "refill" else 48)
    assert row["delete_mode"] == delete_mode


def test_markdown_puts_published_values_beside_ours(rng):
    study, reference = _synthetic_study(rng, "shrink")
    row = {**study_row(study, Statistics.from_features(reference)), "generator": "synthetic"}
    lines = table_rows({"ffhq-sg2ada": row, "demo": row},
                       {"ffhq-sg2ada": {"fid": 2.89, "replace": 2.86, "delete": 2.88, "sub_good": 61.08,
                                        "sub_bad": 74.93}, "demo": None})
    assert lines[0]["published_FID_Sub_Bad"] == 74.93 and lines[1]["published_FID"] == ""
    text = render_markdown(lines, face_detector="Haar")
    ffhq_line = next(line for line in text.splitlines() if line.startswith("| ffhq-sg2ada"))
    assert f"{row['FID']:.2f} (2.89)" in ffhq_line and "(74.93)" in ffhq_line
    demo_line = next(line for line in text.splitlines() if line.startswith("| demo"))
    assert "(" not in demo_line.split("|")[5] and "shrink (48)" in demo_line
    assert "smallest d_i" in text and "Face detector: Haar" in text


# --- the study on a real (demo) generator -----------------------------------------------------


@pytest.fixture(scope="module")
def ppca():
    return fit_ppca(ORL, z_dim=8, resolution=32)


@pytest.mark.slow
@pytest.mark.parametrize("delete_mode", ["shrink", "refill"])
def test_study_records_selection_replacement_and_refill_by_index(ppca, random_inception, tmp_path, delete_mode):
    pairs = parse_pairs({"probe_step": 0.5, "pairs": [{"bad": 3, "good": "3~5"}, {"bad": 9, "good": "9~2"}]})
    settings = StudySettings(num_images=20, latent_seed=7, fraction=0.15, delete_mode=delete_mode, batch_size=16)
    brightness = lambda image: bool(image.mean() > 100)
    arrays = run_study(ppca, random_inception, pairs, settings, has_face=brightness, progress=False)
    # d and the selection, recomputed from the mapping independently
    z = np.random.RandomState(7).randn(20, 8)
    scale = ppca.mapping.scale.double().numpy()
    w_pairs = lambda refs: np.concatenate([latent_z(r, 8, 0.5) for r in refs]) * scale
    mean_bad, mean_good = w_pairs(pairs.bad).mean(0), w_pairs(pairs.good).mean(0)
    w = z * scale
    d = np.linalg.norm(w - mean_bad, axis=1) - np.linalg.norm(w - mean_good, axis=1)
    np.testing.assert_allclose(arrays["d"], d, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(arrays["selected"], np.argsort(d, kind="stable")[:3])
    # the replacements are the images of w + mean(W_good) − mean(W_bad)
    first = arrays["selected"][0]
    w_fixed = torch.tensor(w[first] + mean_good - mean_bad, dtype=torch.float32).reshape(1, 1, 8)
    image = synthesize_uint8(ppca, w_fixed)
    with torch.inference_mode():
        expected = random_inception.extract(image).pool3.numpy()[0]
    np.testing.assert_allclose(arrays["pool3_replaced"][0], expected, rtol=1e-4, atol=1e-4)
    assert arrays["faces_replaced"][0] == brightness(image[0].permute(1, 2, 0).numpy())
    if delete_mode == "refill":
        index = arrays["refill_index"]
        assert len(index) == 3 and (index >= 20).all()
        stream = np.random.RandomState(7).randn(index.max() + 1, 8)[index] * scale
        d_refill = np.linalg.norm(stream - mean_bad, axis=1) - np.linalg.norm(stream - mean_good, axis=1)
        assert (d_refill > arrays["d"][arrays["selected"]].max() - 1e-9).all()
    else:
        assert "refill_index" not in arrays
    meta = study_meta(ppca, random_inception, pairs, settings, "brightness > 100")
    save_study(arrays, meta, tmp_path / "study.npz")
    study = Study.load(tmp_path / "study.npz")
    assert study.delete_mode == delete_mode and study.num_images == 20
    assert len(study.deleted_set()[0]) == (20 if delete_mode == "refill" else 17)


def test_damaged_study_files_are_refused(tmp_path):
    (tmp_path / "study.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(FidlensError, match="cannot read pairs study"):
        Study.load(tmp_path / "study.npz")


def test_automatic_pairs_follow_the_documented_rule(ppca):
    brightness = lambda image: float(image.mean())
    pairs = choose_pairs_by_faces(ppca, brightness, candidates=30, count=3, probes=20, step=0.5, progress=False)
    images = lambda refs: synthesize_uint8(ppca, torch.tensor(
        np.concatenate([latent_z(r, 8, 0.5) for r in refs]) * ppca.mapping.scale.double().numpy(),
        dtype=torch.float32)[:, None]).double().mean(dim=(1, 2, 3)).numpy()
    seed_scores = images([LatentRef(s) for s in range(30)])
    assert [p.bad.seed for p in pairs.pairs] == list(np.argsort(seed_scores, kind="stable")[:3])
    for pair in pairs.pairs:
        probe_scores = images([LatentRef(pair.bad.seed, k) for k in range(1, 21)])
        assert pair.good == LatentRef(pair.bad.seed, int(np.argmax(probe_scores)) + 1)
    assert "lowest-scoring of seeds 0-29" in pairs.rule and isinstance(pairs, PairsFile)
