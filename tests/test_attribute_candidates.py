"""`fidlens attribute --candidates`: ΔFID when each candidate joins the set, against brute force;
and the comparability checks `fidlens fid` makes (detector, covariance, resize), now in `attribute` too."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from bad_input_harness import run_cli

from fidlens.metrics.comparability import ConventionMismatchWarning
from fidlens.metrics.frechet import frechet_distance, mean_and_covariance
from fidlens.metrics.stats import FeatureSet, Statistics

META = {"detector": "made-up.pt", "detector_sha256": "a" * 64, "resize": "tf1-legacy-bilinear"}


def _inputs(tmp, rng, covariance="unbiased"):
    d = 6
    ref = rng.normal(size=(80, d))
    stats = Statistics.from_features(ref, covariance=covariance, meta=dict(META))
    stats.save(tmp / "ref.npz")
    x = rng.normal(loc=0.3, size=(20, d)).astype(np.float32)
    c = rng.normal(loc=0.1, size=(7, d)).astype(np.float32)
    FeatureSet(features=x, meta={**META, "num_images": 20}).save(tmp / "gen.npz")
    FeatureSet(features=c, meta={**META, "num_images": 7, "names": [f"c{i}" for i in range(7)]}).save(tmp / "cand.npz")
    return stats, x.astype(np.float64), c.astype(np.float64)


def test_candidates_csv_is_the_brute_force_add_in_change(tmp_path, rng):
    stats, x, c = _inputs(tmp_path, rng)
    result = run_cli(["attribute", tmp_path / "gen.npz", "--reference", tmp_path / "ref.npz", "--candidates",
                      tmp_path / "cand.npz", "--out", tmp_path / "out"])
    assert result.code == 0, result.stderr
    full = frechet_distance(stats.mu, stats.sigma, *mean_and_covariance(x))
    brute = np.array([frechet_distance(stats.mu, stats.sigma, *mean_and_covariance(np.vstack([x, row]))) - full
                      for row in c])
    with (tmp_path / "out" / "candidates.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == list(range(1, 8))
    got = np.array([float(r["delta_fid"]) for r in sorted(rows, key=lambda r: int(r["index"]))])
    np.testing.assert_allclose(got, brute, rtol=1e-8, atol=1e-10)
    assert rows[0]["name"] == f"c{int(np.argmin(brute))}"
    assert f"adding candidate {int(np.argmin(brute))} c{int(np.argmin(brute))} lowers FID the most" in result.stdout


def test_sides_from_different_detectors_are_refused_unless_allowed(tmp_path, rng):
    _inputs(tmp_path, rng)
    other = FeatureSet.load(tmp_path / "cand.npz")
    FeatureSet(features=other.features, meta={**other.meta, "detector_sha256": "b" * 64}).save(tmp_path / "other.npz")
    args = ["attribute", tmp_path / "gen.npz", "--reference", tmp_path / "ref.npz", "--candidates",
            tmp_path / "other.npz", "--out", tmp_path / "out"]
    refused = run_cli(args)
    assert refused.code != 0 and "refusing to compare different detectors" in refused.stderr
    assert not (tmp_path / "out").exists()
    with pytest.warns(ConventionMismatchWarning, match="comparing despite different detectors"):
        allowed = run_cli([*args, "--allow-mismatch"])
    assert allowed.code == 0 and (tmp_path / "out" / "candidates.csv").is_file()


def test_a_reference_with_the_other_covariance_convention_is_refused(tmp_path, rng):
    _inputs(tmp_path, rng, covariance="population")
    result = run_cli(["attribute", tmp_path / "gen.npz", "--reference", tmp_path / "ref.npz", "--out", tmp_path / "o"])
    assert result.code != 0 and "covariance conventions" in result.stderr
