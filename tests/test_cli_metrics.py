"""``fidlens fid --ci``, ``compare``, ``prdc`` and ``fid-inf`` through the real CLI, on small feature files."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from bad_input_harness import BadInput, check_bad_input, run_cli, table

from fidlens.metrics.bootstrap import bootstrap_fid, compare_fid
from fidlens.metrics.feature_files import read_feature_file
from fidlens.metrics.fid_infinity import fid_infinity
from fidlens.metrics.frechet import FewSamplesWarning, mean_and_covariance
from fidlens.metrics.prdc import prdc
from fidlens.metrics.stats import FeatureSet

D = 12
SHA = "ab" * 32


def _feature_file(path: Path, rows: np.ndarray, detector: str = "toy-detector", sha: str = SHA) -> Path:
    """A fidlens feature file (pool3 + meta), as `fidlens` writes them; pool3 is stored as float32."""
    meta = {"num_images": int(rows.shape[0]), "detector": detector, "detector_sha256": sha,
            "fidlens_version": "test", "source": {"kind": "test"}}
    FeatureSet(pool3=rows, meta=meta).save(path)
    return path


def _stats_file(path: Path, rows: np.ndarray) -> Path:
    mu, sigma = mean_and_covariance(rows)
    np.savez(path, mu=mu, sigma=sigma)
    return path


def _make(tmp: Path, name: str, n: int, *, shift: float = 0.0, scale: float = 1.0, seed: int = 0, d: int = D) -> Path:
    rng = np.random.default_rng(seed)
    return _feature_file(tmp / name, rng.standard_normal((n, d)) * scale + shift)


def _pool3(path: Path) -> np.ndarray:
    return read_feature_file(path).pool3


_INTERVAL = re.compile(r"^FID: (\S+) \[(\S+), (\S+)\]$")


def _interval_line(stdout: str) -> tuple[float, float, float]:
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("FID: ") and "[" not in lines[0]
    match = _INTERVAL.match(lines[1])
    assert match, lines
    value, low, high = (float(g) for g in match.groups())
    assert value == float(lines[0].split()[1])
    return value, low, high


# ----------------------------------------------------------------------------- fid --ci


def test_fid_ci_resamples_both_feature_sides(tmp_path):
    ref = _make(tmp_path, "ref.npz", 150, seed=1)
    gen = _make(tmp_path, "gen.npz", 120, shift=0.2, scale=1.2, seed=2)
    result = run_cli(["fid", ref, gen, "--ci", "0.9", "--bootstrap", "30", "--seed", "4", "--quiet"])
    assert result.code == 0, result.stderr
    value, low, high = _interval_line(result.stdout)
    want = bootstrap_fid(_pool3(ref), _pool3(gen), resample_reference=True, resamples=30, level=0.9, seed=4,
                         estimate=value)
    assert (low, high) == (want.low, want.high)
    assert low < value < high
    assert "ref.npz and" in result.stderr and "bias-corrected" in result.stderr


def test_fid_ci_with_a_statistics_side_resamples_the_other(tmp_path):
    rng = np.random.default_rng(3)
    stats = _stats_file(tmp_path / "stats.npz", rng.standard_normal((200, D)))
    gen = _make(tmp_path, "gen.npz", 100, shift=0.3, seed=4)
    result = run_cli(["fid", stats, gen, "--ci", "0.95", "--bootstrap", "25", "--interval", "percentile", "--quiet"])
    assert result.code == 0, result.stderr
    value, low, high = _interval_line(result.stdout)
    with np.load(stats) as data:
        want = bootstrap_fid((data["mu"], data["sigma"]), _pool3(gen), resamples=25, seed=0, method="percentile",
                             estimate=value)
    assert (low, high) == (want.low, want.high)
    assert "stats.npz is a statistics file" in result.stderr and "cannot be resampled" in result.stderr


def test_fid_without_ci_prints_one_line(tmp_path):
    ref = _make(tmp_path, "ref.npz", 50, seed=1)
    gen = _make(tmp_path, "gen.npz", 40, seed=2)
    result = run_cli(["fid", ref, gen, "--quiet"])
    assert result.code == 0, result.stderr
    assert result.stdout.strip().count("\n") == 0 and result.stdout.startswith("FID: ")


@pytest.mark.slow
def test_fid_ci_on_image_folders(tmp_path, default_weights):
    from conftest import write_images

    rng = np.random.default_rng(5)
    a = write_images(tmp_path / "a", [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(8)])
    b = write_images(tmp_path / "b", [rng.integers(60, 200, (48, 48, 3), dtype=np.uint8) for _ in range(8)])
    result = run_cli(["fid", a, b, "--ci", "0.9", "--bootstrap", "20", "--device", "cpu", "--quiet",
                      "--cache-dir", tmp_path / "cache"])
    assert result.code == 0, result.stderr
    value, low, high = _interval_line(result.stdout)
    assert 0 <= low <= high and value > 0
    assert "a and" in result.stderr


# ----------------------------------------------------------------------------- compare, prdc, fid-inf


def test_compare_prints_and_writes_the_paired_bootstrap(tmp_path):
    ref = _make(tmp_path, "ref.npz", 150, seed=1)
    a = _make(tmp_path, "a.npz", 120, shift=0.05, seed=2)
    b = _make(tmp_path, "b.npz", 110, shift=0.4, scale=1.3, seed=3)
    out = tmp_path / "out" / "compare.json"
    result = run_cli(["compare", ref, a, b, "--bootstrap", "40", "--seed", "2", "--json-out", out, "--quiet"])
    assert result.code == 0, result.stderr
    want = compare_fid(_pool3(ref), _pool3(a), _pool3(b), resamples=40, seed=2)
    lines = result.stdout.splitlines()
    assert lines[0] == f"FID(A): {want.fid_a.estimate} [{want.fid_a.low}, {want.fid_a.high}]"
    assert lines[2] == (f"FID(A) - FID(B): {want.difference.estimate} "
                        f"[{want.difference.low}, {want.difference.high}]")
    assert lines[3] == f"A better (lower FID) with probability {want.p_a_better:.4f}"
    saved = json.loads(out.read_text())
    assert saved["p_a_better"] == want.p_a_better
    assert saved["difference"]["high"] == want.difference.high < 0


def test_prdc_prints_the_feature_space_and_the_warning(tmp_path):
    real = _make(tmp_path, "real.npz", 90, seed=1)
    fake = _make(tmp_path, "fake.npz", 80, shift=0.3, seed=2)
    out = tmp_path / "prdc.json"
    result = run_cli(["prdc", real, fake, "--k", "4", "--k-dc", "6", "--json-out", out, "--quiet"])
    assert result.code == 0, result.stderr
    want = prdc(_pool3(real), _pool3(fake), k_pr=4, k_dc=6)
    got = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert float(got["precision"]) == want.precision and float(got["recall"]) == want.recall
    assert float(got["density"]) == want.density and float(got["coverage"]) == want.coverage
    assert got["feature_space"] == "toy-detector"
    assert "not comparable" in got["note"] and "VGG16" in got["note"]
    saved = json.loads(out.read_text())
    assert saved["feature_space"] == "toy-detector" and saved["k_density_coverage"] == 6


def test_fid_inf_writes_csv_json_and_figure(tmp_path):
    ref = _make(tmp_path, "ref.npz", 150, seed=1)
    gen = _make(tmp_path, "gen.npz", 300, shift=0.2, seed=2)
    out = tmp_path / "inf"
    result = run_cli(["fid-inf", ref, gen, "--seed", "3", "--out", out, "--quiet"])
    assert result.code == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        want = fid_infinity(_pool3(ref), _pool3(gen), seed=3)
    assert f"FID_inf: {want.fid.intercept}" in result.stdout.splitlines()
    assert f"KID_inf: {want.kid.intercept}" in result.stdout.splitlines()
    assert "linspace(50, 300)" in result.stderr  # the grid was scaled down, and it says so
    assert sorted(p.name for p in out.iterdir()) == ["fid_infinity.csv", "fid_infinity.json", "fid_vs_inverse_n.png"]
    rows = (out / "fid_infinity.csv").read_text().splitlines()
    assert rows[0] == "metric,n,inverse_n,value,fitted,residual"
    assert len(rows) == 1 + 2 * want.fid.sizes.size
    summary = json.loads((out / "fid_infinity.json").read_text())
    assert summary["fid_infinity"] == want.fid.intercept and summary["kid_infinity"] == want.kid.intercept
    assert (out / "fid_vs_inverse_n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fid_inf_with_a_statistics_reference_has_no_kid(tmp_path):
    rng = np.random.default_rng(6)
    stats = _stats_file(tmp_path / "stats.npz", rng.standard_normal((200, D)))
    gen = _make(tmp_path, "gen.npz", 200, seed=2)
    result = run_cli(["fid-inf", stats, gen, "--sizes", "100,150,200", "--quiet"])
    assert result.code == 0, result.stderr
    assert "FID_inf: " in result.stdout and "KID_inf" not in result.stdout
    assert "no KID∞" in result.stderr


# ----------------------------------------------------------------------------- bad inputs


def _pair(tmp: Path, n_ref: int = 60, n_gen: int = 50) -> tuple[Path, Path]:
    return _make(tmp, "ref.npz", n_ref, seed=1), _make(tmp, "gen.npz", n_gen, shift=0.3, seed=2)


def _good_fid_ci(tmp: Path) -> None:
    result = run_cli(["fid", tmp / "ref.npz", tmp / "gen.npz", "--ci", "0.9", "--bootstrap", "10", "--quiet"])
    assert result.code == 0, result.stderr
    value, low, high = _interval_line(result.stdout)
    want = bootstrap_fid(_pool3(tmp / "ref.npz"), _pool3(tmp / "gen.npz"), resample_reference=True,
                         resamples=10, level=0.9, estimate=value)
    assert (low, high) == (want.low, want.high)


def _two_stats(tmp: Path) -> list:
    rng = np.random.default_rng(0)
    a = _stats_file(tmp / "a.npz", rng.standard_normal((50, D)))
    b = _stats_file(tmp / "b.npz", rng.standard_normal((50, D)) + 0.1)
    return ["fid", a, b, "--ci", "0.9"]


def _prdc_on_stats(tmp: Path) -> list:
    rng = np.random.default_rng(0)
    _, gen = _pair(tmp)
    return ["prdc", _stats_file(tmp / "stats.npz", rng.standard_normal((50, D))), gen]


def _compare_bad_dims(tmp: Path) -> list:
    ref, a = _pair(tmp)
    b = _make(tmp, "b.npz", 40, seed=3, d=D + 1)
    return ["compare", ref, a, b, "--json-out", tmp / "out" / "c.json", "--bootstrap", "5", "--quiet"]


def _good_compare(tmp: Path) -> None:
    b = _make(tmp, "b.npz", 40, seed=3)
    out = tmp / "out" / "c.json"
    result = run_cli(["compare", tmp / "ref.npz", tmp / "gen.npz", b, "--json-out", out, "--bootstrap", "5", "--quiet"])
    assert result.code == 0, result.stderr
    want = compare_fid(_pool3(tmp / "ref.npz"), _pool3(tmp / "gen.npz"), _pool3(b), resamples=5)
    assert json.loads(out.read_text())["difference"]["estimate"] == want.difference.estimate


def _compare_nan(tmp: Path) -> list:
    ref, a = _pair(tmp)
    rows = np.random.default_rng(4).standard_normal((40, D))
    rows[7, 3] = np.nan
    np.savez(tmp / "b.npz", features=rows)
    return ["compare", ref, a, tmp / "b.npz", "--bootstrap", "5"]


def _few_generated(tmp: Path) -> list:
    ref, gen = _pair(tmp, n_ref=60, n_gen=60)
    return ["fid-inf", ref, gen, "--out", tmp / "inf", "--quiet"]


def _good_fid_inf(tmp: Path) -> None:
    gen = _make(tmp, "gen.npz", 120, shift=0.3, seed=2)
    result = run_cli(["fid-inf", tmp / "ref.npz", gen, "--out", tmp / "inf", "--quiet"])
    assert result.code == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        want = fid_infinity(_pool3(tmp / "ref.npz"), _pool3(gen))
    assert json.loads((tmp / "inf" / "fid_infinity.json").read_text())["fid_infinity"] == want.fid.intercept


def _out_is_file(tmp: Path) -> list:
    ref, gen = _pair(tmp, n_gen=120)
    (tmp / "taken").write_text("not a folder")
    return ["fid-inf", ref, gen, "--out", tmp / "taken"]


def _mismatched_detectors(tmp: Path) -> list:
    rng = np.random.default_rng(0)
    ref = _feature_file(tmp / "ref.npz", rng.standard_normal((60, D)), detector="one", sha="11" * 32)
    gen = _feature_file(tmp / "gen.npz", rng.standard_normal((120, D)), detector="two", sha="22" * 32)
    return ["fid-inf", ref, gen, "--out", tmp / "inf"]


def _resample_stats_reference(tmp: Path) -> list:
    rng = np.random.default_rng(0)
    _, a = _pair(tmp)
    b = _make(tmp, "b.npz", 40, seed=3)
    return ["compare", _stats_file(tmp / "stats.npz", rng.standard_normal((50, D))), a, b, "--resample-reference"]


CASES = [
    BadInput("fid-ci-level-out-of-range", lambda t: ["fid", *_pair(t), "--ci", "1.5"],
             r"argument --ci: .*strictly between 0 and 1", good=_good_fid_ci),
    BadInput("fid-ci-one-resample", lambda t: ["fid", *_pair(t), "--ci", "0.9", "--bootstrap", "1"],
             r"argument --bootstrap: must be from 2", good=_good_fid_ci),
    BadInput("fid-ci-two-statistics-files", _two_stats, r"both sides are statistics files"),
    BadInput("prdc-on-statistics", _prdc_on_stats, r"statistics file .*prdc needs per-image features"),
    BadInput("prdc-k-too-large", lambda t: ["prdc", *_pair(t, n_ref=5), "--k", "5"],
             r"k = 5 for precision/recall needs at least 6 real features"),
    BadInput("prdc-k-dc-zero", lambda t: ["prdc", *_pair(t), "--k-dc", "0"], r"argument --k-dc: must be from 1"),
    BadInput("prdc-json-suffix", lambda t: ["prdc", *_pair(t), "--json-out", t / "p.txt"], r"must end in \.json"),
    BadInput("compare-dimension-mismatch", _compare_bad_dims, r"feature dimensions differ", good=_good_compare),
    BadInput("compare-nan-features", _compare_nan, r"NaN or infinite"),
    BadInput("compare-resample-statistics-reference", _resample_stats_reference,
             r"--resample-reference: .*statistics file"),
    BadInput("fid-inf-too-few-images", _few_generated, r"at least 100 generated images", good=_good_fid_inf),
    BadInput("fid-inf-size-too-large", lambda t: ["fid-inf", *_pair(t, n_gen=120), "--sizes", "50,100,121"],
             r"size 121 is impossible"),
    BadInput("fid-inf-two-sizes", lambda t: ["fid-inf", *_pair(t, n_gen=120), "--sizes", "50,100,100"],
             r"argument --sizes: FID∞ needs at least 3 different sizes"),
    BadInput("fid-inf-size-one", lambda t: ["fid-inf", *_pair(t, n_gen=120), "--sizes", "1,50,100"],
             r"argument --sizes: size 1 is impossible"),
    BadInput("fid-inf-sizes-not-numbers", lambda t: ["fid-inf", *_pair(t), "--sizes", "50,x"],
             r"argument --sizes: expected comma-separated whole numbers"),
    BadInput("fid-inf-out-is-a-file", _out_is_file, r"argument --out: .*is a file, not a folder"),
    BadInput("fid-inf-different-detectors", _mismatched_detectors, r"refusing to compare different detectors"),
]


@table(CASES)
def test_bad_input(case, tmp_path):
    check_bad_input(case, tmp_path)
