"""Bad statistics and feature files, and flags they cannot honour, through `fidlens fid`/`kid`/`stats`.

Every case writes its bad file inside the test, runs the real CLI, and asserts a one-line
refusal that names the problem, with nothing left behind; the next good run (the same file
repaired, or the explicit override) must give the FID an independent textbook computation
(``scipy.linalg.sqrtm``) gives. The unit tests at the end cover the reader of ``.npz``
headers, the comparability rules and the notes for files without metadata.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from bad_input_harness import BadInput, check_bad_input, run_cli, table

from fidlens.metrics.comparability import ConventionMismatchWarning
from fidlens.core.errors import StatisticsError
from fidlens.core.npzread import inspect_npz, read_members
from fidlens.metrics.stats import FeatureSet, Statistics

D = 16
SHA_A = "a" * 64
SHA_B = "b" * 64


# ----------------------------------------------------------------------------- inputs


def _features(seed: int, n: int = 60, d: int = D, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def _meta(**extra) -> dict:
    meta = {"detector": "default_1.pt", "detector_sha256": SHA_A, "fidlens_version": "test"}
    meta.update(extra)
    return meta


def write_stats(path: Path, seed: int = 0, shift: float = 0.0, covariance: str = "unbiased", **meta) -> Path:
    """A fidlens statistics file with detector metadata."""
    Statistics.from_features(_features(seed, shift=shift), covariance=covariance, meta=_meta(**meta)).save(path)
    return path


def write_raw(path: Path, **arrays) -> Path:
    """A pytorch-fid style file: just the arrays given, no metadata."""
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


def good_pair(tmp: Path) -> tuple[Path, Path]:
    return write_stats(tmp / "a.npz", seed=0), write_stats(tmp / "x.npz", seed=1, shift=0.3)


def reference_fid(path_a: Path, path_b: Path) -> float:
    """Textbook FID with scipy's general matrix square root, read with plain np.load."""
    with np.load(path_a) as a, np.load(path_b) as b:
        mu1, s1, mu2, s2 = a["mu"], a["sigma"], b["mu"], b["sigma"]
    root = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root).real)


def fid_value(result) -> float:
    line = next(line for line in result.stdout.splitlines() if line.startswith("FID: "))
    return float(line.split()[1])


def repaired(tmp: Path) -> None:
    """The next good run: x.npz rewritten correctly, and `fid a.npz x.npz` matches the reference."""
    a, x = good_pair(tmp)
    result = run_cli(["fid", a, x])
    assert result.code == 0, result.stderr
    assert fid_value(result) == pytest.approx(reference_fid(a, x), rel=1e-9)
    assert fid_value(result) > 0.1


def overridden(tmp: Path, argv: list) -> None:
    """The next good run is the same comparison with --allow-mismatch: a value and a warning naming both."""
    with pytest.warns(ConventionMismatchWarning) as caught:
        result = run_cli([*argv, "--allow-mismatch"])
    assert result.code == 0, result.stderr
    warning = [str(w.message) for w in caught if w.category is ConventionMismatchWarning]
    assert len(warning) == 1 and "a.npz" in warning[0] and "x.npz" in warning[0]
    assert fid_value(result) == pytest.approx(reference_fid(Path(argv[1]), Path(argv[2])), rel=1e-9)


def _case(tmp: Path, builder) -> list:
    """Write a good a.npz, let BUILDER write the bad x.npz, compare them."""
    a = write_stats(tmp / "a.npz")
    builder(tmp / "x.npz")
    return ["fid", a, tmp / "x.npz"]


def _good_mu_sigma(seed: int = 1, d: int = D) -> tuple[np.ndarray, np.ndarray]:
    x = _features(seed, d=d)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _forged_npz(path: Path, shape: tuple[int, ...]) -> None:
    """A .npz whose 'sigma' header declares SHAPE but which stores only a few bytes."""
    mu, _ = _good_mu_sigma()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(b"\0" * 64)
    mu_buf = io.BytesIO()
    np.lib.format.write_array(mu_buf, mu)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mu.npy", mu_buf.getvalue())
        archive.writestr("sigma.npy", buf.getvalue())


class _Marker:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_as_npz(path: Path) -> None:
    path.write_bytes(pickle.dumps({"mu": _Marker(path.with_name("PWNED"))}))


def _indefinite(path: Path) -> None:
    mu, _ = _good_mu_sigma()
    write_raw(path, mu=mu, sigma=-1000.0 * np.eye(D))


def _fifty_negative(path: Path) -> None:
    d = 64
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(d, d)))
    eig = np.concatenate([np.full(50, -50.0), np.linspace(1.0, 100.0, d - 50)])
    write_raw(path, mu=np.zeros(d), sigma=(q * eig) @ q.T)


def _fifty_negative_args(tmp: Path) -> list:
    d = 64
    a = write_raw(tmp / "a.npz", mu=np.ones(d), sigma=np.eye(d))
    _fifty_negative(tmp / "x.npz")
    return ["fid", a, tmp / "x.npz"]


def _negative_total_args(tmp: Path) -> list:
    """Eigenvalues at -5e-6 x the largest pass the PSD tolerance; the total they give is negative."""
    sigma = np.diag(np.concatenate([[1.0], np.full(D - 1, -5e-6)]))
    a = write_raw(tmp / "a.npz", mu=np.zeros(D), sigma=sigma)
    write_raw(tmp / "x.npz", mu=np.zeros(D), sigma=sigma)
    return ["fid", a, tmp / "x.npz"]


def _asymmetric(path: Path) -> None:
    mu, sigma = _good_mu_sigma()
    sigma = sigma.copy()
    sigma[0, 1] += 0.05 * np.abs(sigma).max()
    write_raw(path, mu=mu, sigma=sigma)


def _with(path: Path, **change) -> None:
    mu, sigma = _good_mu_sigma()
    arrays = {"mu": mu, "sigma": sigma}
    arrays.update(change)
    write_raw(path, **{k: v for k, v in arrays.items() if v is not None})


def _nan_sigma(path: Path) -> None:
    mu, sigma = _good_mu_sigma()
    sigma = sigma.copy()
    sigma[2, 2] = np.nan
    write_raw(path, mu=mu, sigma=sigma)


def _inf_mu(path: Path) -> None:
    mu, sigma = _good_mu_sigma()
    mu = mu.copy()
    mu[0] = np.inf
    write_raw(path, mu=mu, sigma=sigma)


def _truncated(path: Path) -> None:
    write_stats(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _npy_renamed(path: Path) -> None:
    mu, _ = _good_mu_sigma()
    with path.open("wb") as handle:
        np.save(handle, mu)


def _mismatch_args(tmp: Path, **meta_x) -> list:
    a = write_stats(tmp / "a.npz")
    write_stats(tmp / "x.npz", seed=1, shift=0.3, **meta_x)
    return ["fid", a, tmp / "x.npz"]


def _feature_file(path: Path, features: np.ndarray, meta: dict | None = None) -> Path:
    FeatureSet(pool3=features.astype(np.float32), meta=meta or {"num_images": len(features), **_meta()}).save(path)
    return path


def _kid_good(tmp: Path) -> None:
    """KID on two feature files equals the unbiased MMD^2 computed by hand on one full subset."""
    a = _feature_file(tmp / "fa.npz", _features(5, n=30))
    b = _feature_file(tmp / "fb.npz", _features(6, n=30, shift=0.5))
    result = run_cli(["kid", a, b, "--subsets", "1", "--subset-size", "30"])
    assert result.code == 0, result.stderr
    got = float(result.stdout.split("KID: ")[1].split()[0])
    x = np.load(a)["features"].astype(np.float64)
    y = np.load(b)["features"].astype(np.float64)
    k = lambda p, q: (p @ q.T / D + 1.0) ** 3
    m = len(x)
    off = ~np.eye(m, dtype=bool)
    expected = k(x, x)[off].mean() + k(y, y)[off].mean() - 2.0 * k(x, y).mean()
    assert got == pytest.approx(expected, rel=1e-9)


def _kid_args(tmp: Path, builder) -> list:
    a = _feature_file(tmp / "fa.npz", _features(5, n=30))
    builder(tmp / "fx.npz")
    return ["kid", a, tmp / "fx.npz", "--subsets", "2"]


def _damaged_meta(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, pool3=_features(7, n=30).astype(np.float32), meta=np.array("{not json"))


def _stats_from_features_good(tmp: Path) -> None:
    """`stats FEATURES -o s.npz` then `fid s.npz a.npz` gives the reference FID of the same numbers."""
    feats = _feature_file(tmp / "feats.npz", _features(8, n=40))
    result = run_cli(["stats", feats, "-o", tmp / "s.npz"])
    assert result.code == 0, result.stderr
    write_stats(tmp / "a.npz")
    x = np.load(feats)["features"].astype(np.float64)
    loaded = Statistics.load(tmp / "s.npz")
    np.testing.assert_allclose(loaded.sigma, np.cov(x, rowvar=False), rtol=1e-12, atol=1e-12)
    fid = run_cli(["fid", tmp / "s.npz", tmp / "a.npz"])
    assert fid.code == 0, fid.stderr
    assert fid_value(fid) == pytest.approx(reference_fid(tmp / "s.npz", tmp / "a.npz"), rel=1e-9)


def _pytorch_fid_flag_args(tmp: Path) -> list:
    """--covariance population against a file without a 'covariance' key (pytorch-fid: unbiased)."""
    _with(tmp / "x.npz")
    return ["fid", tmp / "x.npz", write_stats(tmp / "a.npz", covariance="population"), "--covariance", "population"]


def _image_side_args(tmp: Path) -> list:
    """A statistics file from another detector against an image folder: refused before extraction."""
    import torch

    from fidlens.detectors.inception import FidInceptionV3
    from fidlens.detectors.inception_weights import tf_to_torchvision_names

    weights = tmp / "pt_inception.pth"
    torch.save(tf_to_torchvision_names(FidInceptionV3(with_logits=True).state_dict()), weights)
    folder = tmp / "imgs"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    a = write_stats(tmp / "a.npz", detector_sha256="c" * 64, detector="other.pt")
    return ["fid", a, folder, "--weights", weights, "--cache-dir", tmp / "cache", "--quiet", "--device", "cpu"]


CASES = [
    BadInput("npy-renamed-npz", lambda t: _case(t, _npy_renamed), r"x\.npz is a single \.npy array", good=repaired),
    BadInput("text-not-zip", lambda t: _case(t, lambda p: p.write_text("mu,sigma\n1,2\n")),
             r"x\.npz is not a readable statistics file \(not a \.npz \(zip\) archive", good=repaired),
    BadInput("truncated-npz", lambda t: _case(t, _truncated), r"x\.npz .*truncated or damaged", good=repaired),
    BadInput("pickle-named-npz", lambda t: _case(t, _pickle_as_npz), r"x\.npz .*not a \.npz \(zip\) archive",
             good=lambda t: (repaired(t), _assert_absent(t / "PWNED"))),
    BadInput("object-array", lambda t: _case(t, lambda p: _with(p, mu=np.array([{"a": 1}] * D, dtype=object))),
             r"mu of .*x\.npz must be a real numeric array, got dtype object", good=repaired),
    BadInput("text-mu", lambda t: _case(t, lambda p: _with(p, mu=np.array(["0.5"] * D))),
             r"mu of .*x\.npz holds text", good=repaired),
    BadInput("complex-sigma", lambda t: _case(t, lambda p: _with(p, sigma=np.eye(D) * (1 + 1e-3j))),
             r"sigma of .*x\.npz is complex", good=repaired),
    BadInput("complex-mu", lambda t: _case(t, lambda p: _with(p, mu=np.zeros(D) + 0.5j)),
             r"mu of .*x\.npz is complex", good=repaired),
    BadInput("huge-declared-shape", lambda t: _case(t, lambda p: _forged_npz(p, (10**6, 10**6))),
             r"x\.npz .*'sigma' declares shape \(1000000, 1000000\).*truncated or forged", good=repaired),
    BadInput("zero-dimensions", lambda t: _case(t, lambda p: _with(p, mu=np.zeros(0), sigma=np.zeros((0, 0)))),
             r"x\.npz has no feature dimensions \(d=0\)", good=repaired),
    BadInput("mu-sigma-do-not-fit", lambda t: _case(t, lambda p: _with(p, sigma=np.eye(D - 3))),
             r"x\.npz: mu \(16,\) and sigma \(13, 13\) do not fit", good=repaired),
    BadInput("sigma-not-square", lambda t: _case(t, lambda p: _with(p, sigma=np.ones((D, D + 1)))),
             r"sigma of .*x\.npz must be a square", good=repaired),
    BadInput("sides-differ-in-d", lambda t: _case(t, lambda p: write_raw(p, mu=np.zeros(8), sigma=np.eye(8))),
             r"feature dimensions differ: .*a\.npz has d=16, .*x\.npz has d=8", good=repaired),
    BadInput("missing-sigma", lambda t: _case(t, lambda p: write_raw(p, mu=np.zeros(D))),
             r"x\.npz has no 'mu'/'sigma' arrays", good=repaired),
    BadInput("nan-sigma", lambda t: _case(t, _nan_sigma), r"sigma of .*x\.npz contains NaN", good=repaired),
    BadInput("inf-mu", lambda t: _case(t, _inf_mu), r"mu of .*x\.npz contains NaN or infinite", good=repaired),
    BadInput("not-symmetric", lambda t: _case(t, _asymmetric),
             r"sigma of .*x\.npz is not symmetric: max\|S - S\^T\| / max\|S\| = 0\.05", good=repaired),
    BadInput("indefinite-minus-1000-I", lambda t: _case(t, _indefinite),
             r"sigma of .*x\.npz is not a covariance: .*smallest eigenvalue -1000, largest -1000", good=repaired),
    BadInput("fifty-eigenvalues-at-minus-50", _fifty_negative_args,
             r"sigma of .*x\.npz is not a covariance: .*smallest eigenvalue -50(\.0*\d*)?, largest 100",
             good=repaired),
    BadInput("negative-total", _negative_total_args, r"FID came out negative \(-", good=repaired),
    BadInput("different-detectors", lambda t: _mismatch_args(t, detector_sha256=SHA_B, detector="mine.pt"),
             r"different detectors \(.*a\.npz: sha256 aaaaaaaaaaaa \(default_1\.pt\); .*x\.npz: sha256 bbbbbbbbbbbb "
             r"\(mine\.pt\)\); pass --allow-mismatch",
             good=lambda t: overridden(t, _mismatch_args(t, detector_sha256=SHA_B, detector="mine.pt"))),
    BadInput("different-covariance", lambda t: _mismatch_args(t, covariance="population"),
             r"different covariance conventions \(.*a\.npz: unbiased; .*x\.npz: population\)",
             good=lambda t: overridden(t, _mismatch_args(t, covariance="population"))),
    BadInput("different-resize", lambda t: _mismatch_args(t, resize="pil-bicubic"),
             r"different resize conventions \(.*a\.npz: tf1-legacy-bilinear; .*x\.npz: pil-bicubic\)",
             good=lambda t: overridden(t, _mismatch_args(t, resize="pil-bicubic"))),
    BadInput("covariance-flag-on-statistics", lambda t: [*_case(t, write_stats), "--covariance", "population"],
             r"--covariance population cannot apply to .*a\.npz: a statistics file carries the covariance it was "
             r"made with \(unbiased\)", good=repaired),
    BadInput("covariance-flag-on-pytorch-fid-file", _pytorch_fid_flag_args,
             r"cannot apply to .*x\.npz: .*\(unbiased, as pytorch-fid files", good=repaired),
    BadInput("max-images-on-statistics", lambda t: [*_case(t, write_stats), "--max-images", "10"],
             r"--max-images cannot apply to .*a\.npz", good=repaired),
    BadInput("statistics-file-missing", lambda t: ["fid", write_stats(t / "a.npz"), t / "x.npz"],
             r"statistics file not found: .*x\.npz", good=repaired),
    BadInput("statistics-path-is-a-folder", lambda t: _case(t, lambda p: p.mkdir()),
             r"x\.npz is a folder, not a statistics \.npz file"),
    # Refused before extraction: features would have been written to the cache under tmp, and the
    # harness finds no new file.
    BadInput("detector-differs-from-image-side", _image_side_args,
             r"different detectors \(.*a\.npz: sha256 cccccccccccc \(other\.pt\); .*imgs: sha256 ",
             allowed_new=r"\.pth\.stamp\.json$"),  # the weights' size+mtime stamp (see fidlens.assets.store)
    BadInput("kid-on-statistics-file", lambda t: _kid_args(t, write_stats),
             r"fx\.npz is a statistics file \(mu/sigma only\), not per-image features", good=_kid_good),
    BadInput("kid-file-without-features", lambda t: _kid_args(t, lambda p: write_raw(p, labels=np.array(["x"]))),
             r"fx\.npz has no feature array \(looked for features, pool3", good=_kid_good),
    BadInput("kid-features-nan", lambda t: _kid_args(t, lambda p: write_raw(p, features=np.full((30, D), np.nan))),
             r"fx\.npz: features contain NaN", good=_kid_good),
    BadInput("kid-features-one-sample", lambda t: _kid_args(t, lambda p: write_raw(p, features=np.ones((1, D)))),
             r"fx\.npz: features 'features' hold 1 sample", good=_kid_good),
    BadInput("kid-features-3d", lambda t: _kid_args(t, lambda p: write_raw(p, features=np.ones((4, 2, D)))),
             r"fx\.npz: features 'features' must be 2-D", good=_kid_good),
    BadInput("kid-damaged-feature-metadata", lambda t: _kid_args(t, _damaged_meta),
             r"fx\.npz: damaged feature metadata", good=_kid_good),
    BadInput("kid-different-detectors",
             lambda t: _kid_args(t, lambda p: _feature_file(p, _features(6, n=30), {"num_images": 30,
                                                                                   **_meta(detector_sha256=SHA_B)})),
             r"different detectors \(.*fa\.npz: sha256 aaaaaaaaaaaa.*fx\.npz: sha256 bbbbbbbbbbbb", good=_kid_good),
    BadInput("stats-output-without-npz", lambda t: ["stats", _feature_file(t / "f.npz", _features(8, n=40)),
                                                    "-o", t / "stats"],
             r"argument -o/--output: .*stats must end in \.npz", good=_stats_from_features_good),
    BadInput("stats-of-a-statistics-file", lambda t: ["stats", write_stats(t / "a.npz"), "-o", t / "s.npz"],
             r"a\.npz is a statistics file \(mu/sigma only\)", good=_stats_from_features_good),
]


def _assert_absent(path: Path) -> None:
    assert not path.exists() or not any(p.is_file() for p in path.rglob("*")), f"{path} should not exist"


@table(CASES)
def test_bad_statistics_input(case: BadInput, tmp_path: Path) -> None:
    check_bad_input(case, tmp_path)


def test_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 22
    assert len({c.id for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------- files that are accepted


@pytest.mark.slow
def test_pytorch_fid_file_is_usable_with_a_one_line_note(tmp_path: Path) -> None:
    """In a real process: exit 0, the FID, and exactly one stderr line naming the file without metadata."""
    a = write_stats(tmp_path / "a.npz")
    mu, sigma = _good_mu_sigma()
    x = write_raw(tmp_path / "pt.npz", mu=mu, sigma=sigma)
    result = subprocess.run([sys.executable, "-m", "fidlens", "fid", str(a), str(x)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and "pt.npz" in notes[0] and "detector is unknown" in notes[0], notes
    value = float(result.stdout.split("FID: ")[1].split()[0])
    assert value == pytest.approx(reference_fid(a, x), rel=1e-9)


def test_round_off_asymmetry_is_accepted_and_gives_the_symmetrised_value(tmp_path: Path) -> None:
    mu, sigma = _good_mu_sigma()
    noisy = sigma + np.triu(np.full_like(sigma, 1e-10 * np.abs(sigma).max()), 1)
    a = write_raw(tmp_path / "a.npz", mu=mu, sigma=noisy)
    b = write_raw(tmp_path / "b.npz", mu=mu + 0.2, sigma=np.eye(D))
    result = run_cli(["fid", a, b])
    assert result.code == 0, result.stderr
    sym = 0.5 * (noisy + noisy.T)
    root = scipy.linalg.sqrtm(sym)
    expected = 0.2**2 * D + np.trace(sym) + D - 2.0 * np.trace(root).real
    assert fid_value(result) == pytest.approx(expected, rel=1e-9)


def test_feature_file_sides_honour_the_covariance_flag(tmp_path: Path) -> None:
    x, y = _features(11, n=40), _features(12, n=40, shift=0.2)
    fx = write_raw(tmp_path / "fx.npz", features=x)
    fy = write_raw(tmp_path / "fy.npz", features=y)
    for flag, ddof in (("unbiased", 1), ("population", 0)):
        result = run_cli(["fid", fx, fy, "--covariance", flag])
        assert result.code == 0, result.stderr
        s1, s2 = np.cov(x, rowvar=False, ddof=ddof), np.cov(y, rowvar=False, ddof=ddof)
        diff = x.mean(0) - y.mean(0)
        expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
        assert fid_value(result) == pytest.approx(expected, rel=1e-9)


def test_matching_covariance_flag_on_statistics_is_accepted(tmp_path: Path) -> None:
    a, x = good_pair(tmp_path)
    result = run_cli(["fid", a, x, "--covariance", "unbiased"])
    assert result.code == 0 and fid_value(result) == pytest.approx(reference_fid(a, x), rel=1e-9)


# ----------------------------------------------------------------------------- the .npz reader


def test_reader_refuses_a_member_larger_than_the_limit_before_loading(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "big.npz", features=np.zeros((1000, 100)))
    members = inspect_npz(path, "feature")
    assert members["features"].shape == (1000, 100) and members["features"].nbytes == 800_000
    with pytest.raises(StatisticsError, match=r"big\.npz: array 'features' declares shape \(1000, 100\)"):
        read_members(path, members.values(), "feature", max_bytes=100_000)
    assert read_members(path, members.values(), "feature")["features"].shape == (1000, 100)


def test_reader_refuses_negative_and_unsupported_headers(tmp_path: Path) -> None:
    path = tmp_path / "neg.npz"
    import io

    buf = io.BytesIO()
    buf.write(np.lib.format.magic(1, 0))
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }"
    buf.write(np.uint16(len(text) + 1).tobytes() + text.encode() + b"\n")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mu.npy", buf.getvalue())
    with pytest.raises(StatisticsError, match=r"neg\.npz is not a readable statistics file \(array 'mu' is damaged"):
        inspect_npz(path)


def test_every_message_is_one_line() -> None:
    for case in CASES:
        assert "\n" not in case.expect and re.compile(case.expect)


def test_unloadable_metadata_is_ignored_with_a_warning_naming_it(tmp_path: Path) -> None:
    """A pickled-object metadata array is never loaded; the statistics stay usable, with one warning."""
    mu, sigma = _good_mu_sigma()
    path = write_raw(tmp_path / "m.npz", mu=mu, sigma=sigma, extra=np.array([{"x": 1}], dtype=object))
    with pytest.warns(UserWarning, match=r"m\.npz: ignoring metadata 'extra' \(pickled objects\)"):
        loaded = Statistics.load(path)
    assert "extra" not in loaded.meta
    np.testing.assert_array_equal(loaded.sigma, sigma)
