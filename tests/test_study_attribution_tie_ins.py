"""The studies report exact ΔFID beside their own numbers: each selected image of the pairs study
(table2_row.json) and the correlation of resampling weights with −ΔFID (summary.json), both
checked against brute-force leave-one-out FIDs; the existing numbers stay as they were."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO

from fidlens.metrics.frechet import frechet_distance, mean_and_covariance
from fidlens.metrics.stats import Statistics
from fidlens.studies.resampling.weights_vs_attribution import weights_vs_delta_fid


def _brute_delta(x: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> np.ndarray:
    full = frechet_distance(mu_r, sigma_r, *mean_and_covariance(x))
    return np.array([frechet_distance(mu_r, sigma_r, *mean_and_covariance(np.delete(x, i, axis=0))) - full
                     for i in range(len(x))])


def test_pairs_row_gives_each_selected_image_its_exact_delta_fid(rng):
    from fidlens.studies.pairs.study_file import FORMAT, Study
    from fidlens.studies.pairs.table import FID_COLUMNS, fid_against, study_row

    pool3 = rng.normal(size=(30, 5))
    arrays = {"pool3": pool3, "faces": np.ones(30, bool), "selected": np.array([3, 7, 11]),
              "pool3_replaced": rng.normal(size=(3, 5)), "faces_replaced": np.ones(3, bool), "d": np.zeros(30)}
    study = Study(arrays, {"format": FORMAT, "settings": {"fraction": 0.1}, "num_pairs": 1, "face_detector": None})
    reference = Statistics.from_features(rng.normal(loc=0.3, size=(40, 5)))
    row = study_row(study, reference)
    assert row["FID"] == fid_against(pool3, reference, "unbiased")  # the table's numbers are unchanged
    assert set(FID_COLUMNS) <= set(row)
    brute = _brute_delta(pool3, reference.mu, reference.sigma)
    got = {item["index"]: item for item in row["selected_delta_fid"]}
    assert sorted(got) == [3, 7, 11]
    for i, item in got.items():
        assert item["delta_fid"] == pytest.approx(brute[i], rel=1e-8, abs=1e-10)
        assert item["rank"] == 1 + int((brute < brute[i]).sum())
    assert row["selected_delta_fid_mean"] == pytest.approx(brute[[3, 7, 11]].mean(), rel=1e-8)


def test_weights_equal_to_minus_delta_fid_correlate_perfectly(rng):
    x = rng.normal(size=(25, 4))
    ref = rng.normal(loc=0.5, size=(40, 4))
    mu_r, sigma_r = mean_and_covariance(ref)
    minus_delta = -_brute_delta(x, mu_r, sigma_r)
    result = weights_vs_delta_fid(3.0 * minus_delta + 1.0, x, mu_r, sigma_r)
    assert result["pearson"] == pytest.approx(1.0, abs=1e-9) and result["spearman"] == pytest.approx(1.0)
    w = rng.normal(size=25)
    other = weights_vs_delta_fid(w, x, mu_r, sigma_r)
    assert other["pearson"] == pytest.approx(np.corrcoef(w, minus_delta)[0, 1], abs=1e-8)
    rank = lambda v: np.argsort(np.argsort(v)).astype(float)
    assert other["spearman"] == pytest.approx(np.corrcoef(rank(w), rank(minus_delta))[0, 1], abs=1e-8)


def test_weights_vs_delta_fid_says_why_it_was_not_computed(rng):
    x = rng.normal(size=(2, 3))
    assert "at least 3" in weights_vs_delta_fid(np.zeros(2), x, np.zeros(3), np.eye(3))["skipped"]
    assert "weights for" in weights_vs_delta_fid(np.zeros(4), rng.normal(size=(5, 3)), np.zeros(3), np.eye(3))["skipped"]


def test_pairs_control_renders_the_study_again_exactly(tmp_path):
    """With the study's own detector as the control, the re-rendered arrays are the study's arrays."""
    from PIL import Image

    from fidlens.detectors.registry import load_detector
    from fidlens.generators.latents import LatentRef
    from fidlens.generators.ppca import fit_ppca
    from fidlens.studies.pairs.control import control_row, control_study
    from fidlens.studies.pairs.spec import Pair, PairsFile
    from fidlens.studies.pairs.study import StudySettings, run_study
    from fidlens.studies.pairs.study_file import FORMAT, Study, save_study
    from fidlens.studies.pairs.table import study_row

    faces = tmp_path / "faces"
    faces.mkdir()
    for subject in (1, 2):
        for path in sorted((REPO / "data" / "orl_faces" / f"s{subject}").glob("*.pgm")):
            Image.open(path).save(faces / f"s{subject}_{path.stem}.png")
    G = fit_ppca(faces, z_dim=5, resolution=16)
    pixels = load_detector({"name": "pixels", "weights": "4"}, device="cpu")
    pairs = PairsFile([Pair(LatentRef(1), LatentRef(1, 2)), Pair(LatentRef(3), LatentRef(3, 1))])
    for mode in ("shrink", "refill"):
        settings = StudySettings(num_images=30, latent_seed=2, fraction=0.2, delete_mode=mode, batch_size=8)
        arrays = run_study(G, pixels, pairs, settings, progress=False)
        meta = {"format": FORMAT, "settings": settings.as_dict(), "num_pairs": 2, "face_detector": None}
        save_study(arrays, meta, tmp_path / f"{mode}.npz")
        study = Study.load(tmp_path / f"{mode}.npz")
        again = control_study(study, G, pixels, batch_size=5)
        for key in ("pool3", "pool3_replaced", "pool3_refill"):
            if key in study.arrays:
                np.testing.assert_array_equal(again.arrays[key], study.arrays[key], err_msg=f"{mode}: {key}")
        reference = np.random.default_rng(0).uniform(size=(40, 16))
        row = control_row(study, G, pixels, reference, log=lambda message: None)
        plain = study_row(study, Statistics.from_features(reference))
        assert row["FID_Replace"] == pytest.approx(plain["FID_Replace"], rel=1e-12)
        assert row["control_detector"] == "pixels (pixels-grey-4x4)"
