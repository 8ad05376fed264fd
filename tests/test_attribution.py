"""Exact per-image FID attribution: against brute-force recomputation, and its CLI.

Brute force here means the definition: build the statistics of the set without image i
(or with candidate c) from the features, call fidlens.metrics.frechet.frechet_distance, subtract.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from bad_input_harness import BadInput, check_bad_input, run_cli, table
from file_writers import write_ranking_csv

from fidlens.metrics.attribution import FidAttribution, attribute, ranks_from_delta
from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import frechet_distance, mean_and_covariance
from fidlens.metrics.rank1_trace import trace_sqrt_rank1_delta
from fidlens.metrics.stats import FeatureSet, Statistics

TOL = 1e-8  # |ΔFID_fast − ΔFID_brute| ≤ TOL · FID


def _stats(x: np.ndarray, unbiased: bool) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mean_and_covariance(x, unbiased=unbiased)


def brute_leave_one_out(x, mu_r, sigma_r, indices, unbiased: bool) -> tuple[np.ndarray, float]:
    base = frechet_distance(mu_r, sigma_r, *_stats(x, unbiased))
    return np.array([frechet_distance(mu_r, sigma_r, *_stats(np.delete(x, i, axis=0), unbiased)) - base
                     for i in indices]), base


def brute_add_in(x, mu_r, sigma_r, candidates, unbiased: bool) -> np.ndarray:
    base = frechet_distance(mu_r, sigma_r, *_stats(x, unbiased))
    return np.array([frechet_distance(mu_r, sigma_r, *_stats(np.vstack([x, c[None]]), unbiased)) - base
                     for c in candidates])


def make_sets(rng: np.random.Generator, d: int, n: int, n_ref: int):
    """A generated set (n, d) and reference statistics from n_ref samples of another Gaussian."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    ref = rng.standard_normal((n_ref, d)) @ mix * 2.0 + 0.3
    x = rng.standard_normal((n, d)) * np.linspace(0.2, 2.0, d) + 0.5
    return x, ref


# (d, N, N_ref): N > d; N < d; singular reference (N_ref < d); N − 1 = d (every removal
# makes Σ singular); N = d + 2 (nearly so)
SHAPES = [(16, 100, 200), (32, 20, 200), (48, 30, 20), (40, 41, 300), (24, 26, 100), (64, 80, 400)]


@pytest.mark.parametrize("covariance", ["unbiased", "population"])
@pytest.mark.parametrize(("d", "n", "n_ref"), SHAPES)
def test_leave_one_out_matches_brute_force(rng, d, n, n_ref, covariance):
    unbiased = covariance == "unbiased"
    x, ref = make_sets(rng, d, n, n_ref)
    mu_r, sigma_r = _stats(ref, unbiased)
    result = attribute(x, mu_r, sigma_r, covariance=covariance)
    brute, base = brute_leave_one_out(x, mu_r, sigma_r, range(n), unbiased)
    assert result.fid == pytest.approx(base, rel=1e-12)
    err = np.abs(result.delta_fid - brute).max()
    assert err <= TOL * base, f"max |error| {err:.3g} vs FID {base:.4g}"
    # the numbers are not trivially small: the check has teeth
    assert np.abs(brute).max() > 1e-4 * base


@pytest.mark.parametrize(("d", "n", "decades"), [(40, 41, 4), (40, 30, 6), (64, 50, 5)])
def test_ill_conditioned_spectra_match_brute_force(rng, d, n, decades):
    """Feature scales spread over many decades (tiny eigenvalues), N ≤ d: still exact."""
    scales = np.logspace(-decades, 1, d)
    x = rng.standard_normal((n, d)) * scales + 0.5
    mu_r, sigma_r = _stats(rng.standard_normal((400, d)) * scales[::-1], True)
    result = attribute(x, mu_r, sigma_r)
    brute, base = brute_leave_one_out(x, mu_r, sigma_r, range(n), True)
    assert np.abs(result.delta_fid - brute).max() <= TOL * base


@pytest.mark.parametrize("covariance", ["unbiased", "population"])
@pytest.mark.parametrize(("d", "n", "n_ref"), [(16, 100, 200), (32, 20, 200), (48, 30, 20)])
def test_add_in_matches_brute_force(rng, d, n, n_ref, covariance):
    unbiased = covariance == "unbiased"
    x, ref = make_sets(rng, d, n, n_ref)
    mu_r, sigma_r = _stats(ref, unbiased)
    # candidates: typical, far away, equal to the mean, and (when N < d) out of the set's span
    candidates = np.vstack([rng.standard_normal((3, d)) * 1.5 + 0.5, x.mean(axis=0) + 25.0,
                            x.mean(axis=0)])
    model = FidAttribution(x, mu_r, sigma_r, covariance=covariance)
    fast = model.add_in(candidates)
    brute = brute_add_in(x, mu_r, sigma_r, candidates, unbiased)
    assert np.abs(fast - brute).max() <= TOL * model.fid
    assert brute[3] > 0  # a far outlier makes FID worse


@pytest.mark.parametrize("covariance", ["unbiased", "population"])
def test_downdate_and_update_formulas(rng, covariance):
    """The closed forms the attribution rests on, against recomputed statistics."""
    unbiased = covariance == "unbiased"
    x = rng.standard_normal((12, 5))
    n = len(x)
    mu, sigma = _stats(x, unbiased)
    k = n - 1 if unbiased else n
    v = x[4] - mu
    k_minus = k - 1
    mu_minus, sigma_minus = _stats(np.delete(x, 4, axis=0), unbiased)
    np.testing.assert_allclose(mu_minus, mu - v / (n - 1), rtol=1e-13, atol=1e-14)
    expected = (k * sigma - n / (n - 1) * np.outer(v, v)) / k_minus
    np.testing.assert_allclose(sigma_minus, expected, rtol=1e-12, atol=1e-14)
    c = rng.standard_normal(5)
    w = c - mu
    mu_plus, sigma_plus = _stats(np.vstack([x, c]), unbiased)
    np.testing.assert_allclose(mu_plus, mu + w / (n + 1), rtol=1e-13, atol=1e-14)
    expected = (k * sigma + n / (n + 1) * np.outer(w, w)) / (k + 1)
    np.testing.assert_allclose(sigma_plus, expected, rtol=1e-12, atol=1e-14)


def _trace_sqrt(mat: np.ndarray) -> float:
    lam = np.linalg.eigvalsh(mat)
    lam = np.where(lam > lam.max() * lam.size * np.finfo(float).eps, lam, 0.0)
    return float(np.sqrt(lam).sum())


def test_rank1_trace_kernel_against_eigenvalues(rng):
    r = 40
    lam = np.sort(rng.gamma(0.5, 1.0, r)) * 10.0
    z = rng.standard_normal((8, r)) * np.sqrt(lam) * 0.5
    base = np.sqrt(lam).sum()
    tol = 1e-12 * lam.sum()

    def brute(lams, rows, coef):
        return np.array([_trace_sqrt(np.diag(lams) + coef * np.outer(row, row)) - np.sqrt(lams).sum() for row in rows])

    # update, including zero eigenvalues (a candidate outside the span)
    with_null = lam.copy()
    with_null[:10] = 0.0
    for lams in (lam, with_null):
        fast, info = trace_sqrt_rank1_delta(lams, z, 0.4, tol=tol)
        assert np.abs(fast - brute(lams, z, 0.4)).max() <= 1e-10 * base
        assert info.error_estimate <= tol
    # downdate that keeps the matrix positive definite
    coef = -0.9 / float(((z * z) / lam).sum(axis=1).max())
    fast, _ = trace_sqrt_rank1_delta(lam, z, coef, tol=tol)
    assert np.abs(fast - brute(lam, z, coef)).max() <= 1e-10 * base
    # downdate that makes it singular (c0 = 0 exactly): each row scaled onto the boundary
    scaled = z / np.sqrt(((z * z) / lam).sum(axis=1, keepdims=True) * -coef)
    fast, _ = trace_sqrt_rank1_delta(lam, scaled, coef, tol=tol, c0=np.zeros(len(z)))
    assert np.abs(fast - brute(lam, scaled, coef)).max() <= 1e-8 * base


def test_quadrature_converges_with_more_nodes(rng):
    x, ref = make_sets(rng, 24, 60, 100)
    mu_r, sigma_r = _stats(ref, True)
    loose = FidAttribution(x, mu_r, sigma_r, rtol=1e-8)
    tight = FidAttribution(x, mu_r, sigma_r, rtol=1e-15)
    d_loose, info_loose, _ = loose.leave_one_out()
    d_tight, info_tight, _ = tight.leave_one_out()
    assert info_tight.nodes > info_loose.nodes
    assert info_tight.error_estimate <= info_tight.t_max  # sane record
    assert np.abs(d_loose - d_tight).max() <= 1e-8 * (loose.trace_ref + loose.trace_gen)
    assert np.abs(d_loose - d_tight).max() > 0.0  # they are different rules


def test_null_space_leak_is_rounding_when_n_below_d(rng):
    x, ref = make_sets(rng, 40, 15, 200)
    result = attribute(x, *_stats(ref, True))
    assert result.extra["rank"] == 14
    assert result.extra["null_space_leak"] < 1e-10


def test_rank_one_is_the_most_harmful_image(rng):
    """An image far from the reference ranks 1; removing it lowers FID by the brute-force amount."""
    d = 8
    ref = rng.standard_normal((500, d))
    x = rng.standard_normal((30, d))
    x[17] += 12.0
    mu_r, sigma_r = _stats(ref, True)
    result = attribute(x, mu_r, sigma_r, names=[f"img{i:02d}" for i in range(30)])
    assert result.ranks[17] == 1 and result.order[0] == 17
    assert result.delta_fid[17] < 0
    brute, _ = brute_leave_one_out(x, mu_r, sigma_r, [17], True)
    assert result.delta_fid[17] == pytest.approx(brute[0], rel=1e-9)
    assert sorted(result.ranks) == list(range(1, 31))


def test_ranks_break_ties_by_index():
    np.testing.assert_array_equal(ranks_from_delta(np.array([0.5, -1.0, 0.5, -1.0, 0.0])), [4, 1, 5, 2, 3])


def test_ranking_csv_round_trips_in_rank_order(rng, tmp_path):
    x, ref = make_sets(rng, 8, 12, 50)
    names = [f"dir/im{i}.png" for i in range(12)]
    result = attribute(x, *_stats(ref, True), names=names)
    path = tmp_path / "out" / "ranking.csv"
    write_ranking_csv(path, result)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 13)]
    for row in rows:
        i = int(row["index"])
        assert row["name"] == names[i]
        assert float(row["delta_fid"]) == result.delta_fid[i]  # full precision
    assert sorted(p.name for p in path.parent.iterdir()) == ["ranking.csv"]  # no temp files


@pytest.mark.parametrize(
    ("features", "mu", "sigma", "message"),
    [
        (np.full((5, 3), np.nan), np.zeros(3), np.eye(3), "NaN"),
        (np.ones((2, 3)), np.zeros(3), np.eye(3), "at least 3 images"),
        (np.ones((5, 3)), np.zeros(4), np.eye(4), "dimensions differ"),
        (np.arange(15.0).reshape(5, 3), np.zeros(3), -np.eye(3), "positive semi-definite|not a covariance"),
        (np.arange(15.0).reshape(5, 3), np.zeros(3), np.eye(2), "do not fit"),
        (np.array([["a"] * 3] * 5), np.zeros(3), np.eye(3), "numeric"),
    ],
    ids=["nan", "too-few", "dimension", "not-psd", "shapes", "strings"],
)
def test_core_refuses_bad_input(features, mu, sigma, message):
    with pytest.raises(StatisticsError, match=message):
        attribute(features, mu, sigma)


def test_core_refuses_unknown_covariance(rng):
    with pytest.raises(StatisticsError, match="covariance must be one of"):
        FidAttribution(rng.standard_normal((5, 3)), np.zeros(3), np.eye(3), covariance="n-2")


@pytest.mark.slow
def test_2048d_set_with_n_below_d_matches_brute_force(rng):
    """Inception-sized: d = 2048, N = 300 (Σ singular), a full-rank reference; 8 images brute-forced
    (each brute-force FID is a full 2048-d eigen-decomposition; the small-d tests check every image)."""
    d, n = 2048, 300
    basis = rng.standard_normal((d, d)) / np.sqrt(d)
    spectrum = 40.0 / np.arange(1, d + 1)  # power-law, like Inception pool3 covariances
    sigma_r = (basis * spectrum) @ basis.T
    sigma_r = 0.5 * (sigma_r + sigma_r.T) + 1e-3 * np.eye(d)
    mu_r = np.abs(rng.standard_normal(d)) * 0.3
    x = np.abs(rng.standard_normal((n, d)) @ (basis * 0.3)) + 0.02
    result = attribute(x, mu_r, sigma_r)
    indices = np.linspace(0, n - 1, 8).astype(int)
    brute, base = brute_leave_one_out(x, mu_r, sigma_r, indices, True)
    err = np.abs(result.delta_fid[indices] - brute).max()
    assert err <= TOL * base, f"max |error| {err:.3g} vs FID {base:.4g}"


# ----------------------------------------------------------------------------- CLI


def _write_features(path: Path, x: np.ndarray, names: list[str] | None = None) -> Path:
    meta = {"num_images": len(x)}
    if names is not None:
        meta["names"] = names
    FeatureSet(pool3=x.astype(np.float32), meta=meta).save(path)
    return path


def _good_inputs(tmp: Path, d: int = 16, n: int = 24) -> tuple[Path, Path, np.ndarray, tuple]:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((n, d)) * 1.3 + 0.2).astype(np.float32)
    ref = rng.standard_normal((300, d))
    stats = Statistics.from_features(ref)
    ref_path = tmp / "good_ref.npz"
    stats.save(ref_path)
    gen_path = _write_features(tmp / "good_gen.npz", x, [f"seed{i:04d}" for i in range(n)])
    return ref_path, gen_path, x.astype(np.float64), (stats.mu, stats.sigma)


def _check_good_run(tmp: Path) -> None:
    """The next good run writes a ranking equal to brute force."""
    ref_path, gen_path, x, (mu_r, sigma_r) = _good_inputs(tmp)
    out = tmp / "good_out"
    result = run_cli(["attribute", gen_path, "--reference", ref_path, "--out", out, "--top", "3"])
    assert result.code == 0, result.stderr
    with (out / "ranking.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    indices = [int(r["index"]) for r in rows]
    brute, base = brute_leave_one_out(x, mu_r, sigma_r, indices, True)
    got = np.array([float(r["delta_fid"]) for r in rows])
    assert np.abs(got - brute).max() <= TOL * base
    assert np.all(np.diff(got) >= 0)  # rank order: most harmful first
    assert rows[0]["name"] == f"seed{indices[0]:04d}"
    summary = json.loads((out / "attribution.json").read_text())
    assert summary["fid"] == pytest.approx(base, rel=1e-12)
    assert summary["most_harmful"][0]["index"] == indices[0]
    assert f"FID: {summary['fid']}" in result.stdout
    assert not (out / "grid.png").exists()  # no images behind a feature file


def test_cli_feature_file_matches_brute_force(tmp_path):
    _check_good_run(tmp_path)


def _bad_reference(tmp: Path, arrays: dict | None = None, raw: bytes | None = None) -> list:
    _, gen, _, _ = _good_inputs(tmp)
    ref = tmp / "bad_ref.npz"
    if raw is not None:
        ref.write_bytes(raw)
    else:
        np.savez(ref, **arrays)
    return ["attribute", gen, "--reference", ref, "--out", tmp / "out"]


def _bad_generated(tmp: Path, make) -> list:
    ref, _, _, _ = _good_inputs(tmp)
    gen = make(tmp)
    return ["attribute", gen, "--reference", ref, "--out", tmp / "out"]


def _nan_features(tmp: Path) -> Path:
    x = np.ones((10, 16), dtype=np.float32)
    x[3, 5] = np.nan
    return _write_features(tmp / "nan.npz", x)


def _damaged_features(tmp: Path) -> Path:
    path = tmp / "damaged.npz"
    np.savez(path, pool3=np.ones((10, 16), np.float32), meta=np.array(json.dumps({"num_images": 12})))
    return path


def _meta_not_json(tmp: Path) -> Path:
    path = tmp / "meta.npz"
    np.savez(path, pool3=np.ones((10, 16), np.float32), meta=np.array("{not json"))
    return path


def _junk_npz(tmp: Path) -> Path:
    (tmp / "junk.npz").write_bytes(b"\x00" * 64)
    return tmp / "junk.npz"


def _empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("no images here")
    return tmp / "empty"


def _out_is_file(tmp: Path) -> list:
    ref, gen, _, _ = _good_inputs(tmp)
    (tmp / "out").write_text("I am a file")
    return ["attribute", gen, "--reference", ref, "--out", tmp / "out"]


BAD_INPUTS = [
    BadInput("reference-missing", lambda t: ["attribute", _good_inputs(t)[1], "--reference", t / "nope.npz",
                                             "--out", t / "out"], r"not found|does not exist", good=_check_good_run),
    BadInput("reference-not-npz", lambda t: _bad_reference(t, raw=b"this is not a zip archive"),
             r"not a readable statistics file", good=_check_good_run),
    BadInput("reference-without-mu-sigma", lambda t: _bad_reference(t, {"weights": np.ones(3)}),
             r"no 'mu'/'sigma'", good=_check_good_run),
    BadInput("reference-shapes-disagree", lambda t: _bad_reference(t, {"mu": np.zeros(16), "sigma": np.eye(15)}),
             r"do not fit together", good=_check_good_run),
    BadInput("reference-nan-sigma", lambda t: _bad_reference(t, {"mu": np.zeros(16), "sigma": np.full((16, 16), np.nan)}),
             r"NaN", good=_check_good_run),
    BadInput("reference-not-psd", lambda t: _bad_reference(t, {"mu": np.zeros(16), "sigma": -np.eye(16)}),
             r"not positive semi-definite|not a covariance", good=_check_good_run),
    BadInput("reference-other-dimension", lambda t: _bad_reference(t, {"mu": np.zeros(8), "sigma": np.eye(8)}),
             r"dimensions differ", good=_check_good_run),
    BadInput("generated-is-statistics", lambda t: _bad_generated(t, lambda u: _good_inputs(u)[0]),
             r"holds statistics", good=_check_good_run),
    BadInput("generated-nan-features", lambda t: _bad_generated(t, _nan_features), r"NaN", good=_check_good_run),
    BadInput("generated-two-images", lambda t: _bad_generated(
        t, lambda u: _write_features(u / "two.npz", np.ones((2, 16)))), r"at least 3 images", good=_check_good_run),
    BadInput("generated-damaged-feature-file", lambda t: _bad_generated(t, _damaged_features), r"damaged",
             good=_check_good_run),
    BadInput("generated-meta-not-json", lambda t: _bad_generated(t, _meta_not_json), r"not a fidlens feature file",
             good=_check_good_run),
    BadInput("generated-not-npz", lambda t: _bad_generated(t, _junk_npz), r"not a readable feature file",
             good=_check_good_run),
    BadInput("generated-missing", lambda t: _bad_generated(t, lambda u: u / "no_such_folder"), r"does not exist",
             good=_check_good_run),
    BadInput("generated-empty-folder", lambda t: _bad_generated(t, _empty_folder), r"no images|empty|no supported",
             good=_check_good_run),
    BadInput("out-is-a-file", _out_is_file, r"exists and is not a folder", good=_check_good_run),
    BadInput("top-zero", lambda t: [*_bad_generated(t, lambda u: _good_inputs(u)[1]), "--top", "0"],
             r"--top.*at least 1", good=_check_good_run),
]


@table(BAD_INPUTS)
def test_cli_bad_input(case, tmp_path):
    check_bad_input(case, tmp_path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::fidlens.metrics.frechet.FewSamplesWarning")
def test_cli_images_write_ranking_and_grid(tmp_path, default_weights):
    """An image folder: names in ranking.csv, a PNG grid; a clearly foreign image ranks first."""
    from PIL import Image

    rng = np.random.default_rng(3)
    folder = tmp_path / "gen"
    folder.mkdir()
    base = np.zeros((64, 64, 3), np.uint8)
    base[:, :, 0] = np.linspace(40, 200, 64, dtype=np.uint8)[None, :]
    for i in range(7):
        tile = np.clip(base.astype(int) + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(tile).save(folder / f"smooth{i}.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "noise.png")
    ref_stats = tmp_path / "ref.npz"
    refs = tmp_path / "ref"
    refs.mkdir()
    for i in range(6):
        tile = np.clip(base.astype(int) + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(tile).save(refs / f"r{i}.png")
    common = ["--no-cache", "--quiet", "--device", "cpu"]
    assert run_cli(["stats", refs, "-o", ref_stats, *common]).code == 0
    out = tmp_path / "out"
    result = run_cli(["attribute", folder, "--reference", ref_stats, "--out", out, "--top", "2", *common])
    assert result.code == 0, result.stderr
    with (out / "ranking.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["name"] == "noise.png" and rows[0]["rank"] == "1"
    assert {r["name"] for r in rows} == {p.name for p in folder.iterdir()}
    png = (out / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
