"""Everyday use of the CLI (issue 12): ``--json``, the KID subset default, image limits, help texts.

The JSON tests parse stdout with a strict parser (no NaN/Infinity, exactly one object) and
check each field against the human output of the same command and against an independent
computation on small ``.npz`` files built here. The KID default tests check the subset size
actually used against `kernel_inception_distance` called with that size. The limit tests run
a tiny image through the real CLI with a lowered limit (refused, nothing written), then with
the default (accepted).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import yaml
from bad_input_harness import BadInput, check_bad_input, run_cli, table
from conftest import ORL, REPO
from PIL import Image

import fidlens
from fidlens.metrics.kid import kernel_inception_distance
from fidlens.metrics.stats import FeatureSet, Statistics

D = 16
SHA = "c" * 64
META = {"detector": "default_1.pt", "detector_sha256": SHA, "fidlens_version": "test"}


# ----------------------------------------------------------------------------- helpers


def strict_json(text: str) -> dict:
    """Exactly one JSON object on one line; NaN / Infinity tokens are refused."""

    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line of JSON on stdout, got {text!r}"
    data = json.loads(lines[0], parse_constant=refuse)
    assert isinstance(data, dict)
    return data


def features(seed: int, n: int, shift: float = 0.0, d: int = D) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, d)) + shift).astype(np.float32)


def feature_file(path: Path, pool3: np.ndarray, **meta) -> Path:
    FeatureSet(pool3=pool3, meta={**META, "num_images": len(pool3), **meta}).save(path)
    return path


def stats_file(path: Path, seed: int, n: int = 60, shift: float = 0.0, covariance: str = "unbiased") -> Path:
    Statistics.from_features(features(seed, n, shift).astype(np.float64), covariance=covariance,
                             meta=dict(META)).save(path)
    return path


def textbook_fid(a: Path, b: Path) -> float:
    with np.load(a) as x, np.load(b) as y:
        mu1, s1, mu2, s2 = x["mu"], x["sigma"], y["mu"], y["sigma"]
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)


def human_value(stdout: str, label: str) -> float:
    match = re.search(rf"^{label}: (\S+)$", stdout, flags=re.MULTILINE)
    assert match, f"no '{label}:' line in {stdout!r}"
    return float(match.group(1))


def check_common(data: dict, command: str) -> None:
    assert data["command"] == command
    assert data["fidlens_version"] == fidlens.__version__
    assert data["schema_version"] == 1
    assert isinstance(data["elapsed_seconds"], float) and 0.0 <= data["elapsed_seconds"] < 600


# ----------------------------------------------------------------------------- --json


def test_fid_json_matches_the_human_line_and_a_textbook_fid(tmp_path):
    a = stats_file(tmp_path / "a.npz", seed=0, n=60)
    b = stats_file(tmp_path / "b.npz", seed=1, n=45, shift=0.3)
    human = run_cli(["fid", a, b])
    result = run_cli(["fid", a, b, "--json"])
    assert human.code == result.code == 0, result.stderr
    data = strict_json(result.stdout)
    check_common(data, "fid")
    assert data["fid"] == human_value(human.stdout, "FID")  # the very same float
    assert data["fid"] == pytest.approx(textbook_fid(a, b), rel=1e-9)
    assert data["interval"] is None
    assert [side["path"] for side in data["inputs"]] == [str(a), str(b)]
    assert [side["num_images"] for side in data["inputs"]] == [60, 45]
    for side in data["inputs"]:
        assert side["kind"] == "statistics"
        assert (side["detector"], side["detector_sha256"]) == ("default_1.pt", SHA)
        assert side["covariance"] == "unbiased" and side["resize"] == "tf1-legacy-bilinear"


def test_fid_json_says_null_for_what_a_pytorch_fid_file_does_not_record(tmp_path):
    a = stats_file(tmp_path / "a.npz", seed=0)
    x = np.random.default_rng(3).normal(size=(50, D))
    raw = tmp_path / "raw.npz"
    with raw.open("wb") as handle:  # pytorch-fid layout: mu and sigma, nothing else
        np.savez(handle, mu=x.mean(axis=0), sigma=np.cov(x, rowvar=False))
    with pytest.warns(UserWarning, match="records no detector"):  # printed as one stderr line by the CLI
        result = run_cli(["fid", a, raw, "--json"])
    assert result.code == 0, result.stderr
    data = strict_json(result.stdout)  # the note stayed off stdout
    side = data["inputs"][1]
    assert side["kind"] == "statistics"
    assert side["num_images"] is None and side["detector"] is None and side["detector_sha256"] is None
    assert side["covariance"] is None and side["resize"] is None
    assert data["fid"] == pytest.approx(textbook_fid(a, raw), rel=1e-9)


def test_fid_json_carries_the_bootstrap_interval_instead_of_printing_it(tmp_path):
    a = stats_file(tmp_path / "a.npz", seed=0)
    b = feature_file(tmp_path / "b.npz", features(1, 50, shift=0.3))
    argv = ["fid", a, b, "--ci", "0.9", "--bootstrap", "20", "--seed", "4", "--quiet"]
    human, result = run_cli(argv), run_cli([*argv, "--json"])
    assert human.code == result.code == 0, result.stderr
    data = strict_json(result.stdout)
    low, high = re.search(r"^FID: \S+ \[(\S+), (\S+)\]$", human.stdout, flags=re.MULTILINE).groups()
    interval = data["interval"]
    assert (interval["low"], interval["high"]) == (float(low), float(high))
    assert interval["level"] == 0.9 and interval["resamples"] == 20 and interval["seed"] == 4
    assert interval["method"] == "bias-corrected" and interval["low"] <= interval["high"]
    assert data["inputs"][1]["kind"] == "features" and data["inputs"][1]["num_images"] == 50


def test_kid_json_matches_the_human_lines_and_an_independent_kid(tmp_path):
    fa, fb = features(5, 300), features(6, 240, shift=0.4)
    a, b = feature_file(tmp_path / "a.npz", fa), feature_file(tmp_path / "b.npz", fb)
    argv = ["kid", a, b, "--subsets", "7", "--subset-size", "50", "--seed", "3"]
    human, result = run_cli(argv), run_cli([*argv, "--json"])
    assert human.code == result.code == 0, result.stderr
    data = strict_json(result.stdout)
    check_common(data, "kid")
    assert data["kid"] == human_value(human.stdout, "KID")
    assert data["kid_std"] == human_value(human.stdout, "KID_std")
    mean, std = kernel_inception_distance(fa, fb, num_subsets=7, max_subset_size=50, seed=3)
    assert (data["kid"], data["kid_std"]) == (mean, std)
    assert data["kid_x1000"] == pytest.approx(mean * 1000) and data["kid_std_x1000"] == pytest.approx(std * 1000)
    assert (data["subsets"], data["subset_size"], data["subset_size_requested"], data["seed"]) == (7, 50, 50, 3)
    assert [side["num_images"] for side in data["inputs"]] == [300, 240]
    for side in data["inputs"]:
        assert side["kind"] == "features" and side["detector_sha256"] == SHA and side["covariance"] is None


def test_stats_json_describes_the_file_it_wrote(tmp_path):
    fa = features(8, 70)
    a = feature_file(tmp_path / "a.npz", fa)
    out = tmp_path / "out" / "s.npz"
    result = run_cli(["stats", a, "-o", out, "--covariance", "population", "--json"])
    assert result.code == 0, result.stderr
    data = strict_json(result.stdout)
    check_common(data, "stats")
    written = Statistics.load(out)
    np.testing.assert_allclose(written.mu, fa.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(written.sigma, np.cov(fa.astype(np.float64), rowvar=False, bias=True), rtol=1e-10)
    assert data["output"] == str(out) and data["dimension"] == D
    side = data["input"]
    assert (side["path"], side["kind"], side["num_images"]) == (str(a), "features", 70)
    assert side["covariance"] == "population" == written.meta["covariance"]
    assert side["detector_sha256"] == SHA


def test_json_output_of_a_refused_command_is_nothing_on_stdout(tmp_path):
    a = stats_file(tmp_path / "a.npz", seed=0)
    b = stats_file(tmp_path / "b.npz", seed=1, covariance="population")
    result = run_cli(["fid", a, b, "--json"])
    assert result.code == 2 and result.stdout == ""
    assert result.last_line.startswith("error: ") and "covariance" in result.last_line


def test_emit_writes_null_for_non_finite_numbers(capsys):
    from fidlens.cli.json_output import emit

    emit({"value": float("nan"), "nested": [float("inf"), 1.5]})
    assert strict_json(capsys.readouterr().out) == {"value": None, "nested": [None, 1.5]}


# ----------------------------------------------------------------------------- KID subset size


def test_kid_default_with_two_200_image_sets_uses_subsets_of_100_with_a_note(tmp_path):
    fa, fb = features(1, 200), features(2, 200, shift=0.2)
    a, b = feature_file(tmp_path / "a.npz", fa), feature_file(tmp_path / "b.npz", fb)
    result = run_cli(["kid", a, b, "--subsets", "10", "--json"])
    assert result.code == 0, result.stderr
    data = strict_json(result.stdout)
    assert data["subset_size"] == 100 and data["subset_size_requested"] is None
    assert (data["kid"], data["kid_std"]) == kernel_inception_distance(fa, fb, num_subsets=10, max_subset_size=100)
    assert data["kid_std"] > 0
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("note: KID subsets of 100 images")
    human = run_cli(["kid", a, b, "--subsets", "10"])
    assert "± 0.0000" not in human.stdout


def test_kid_subset_as_large_as_both_sets_is_warned_about_in_one_line(tmp_path):
    a = feature_file(tmp_path / "a.npz", features(1, 200))
    b = feature_file(tmp_path / "b.npz", features(2, 200, shift=0.2))
    with pytest.warns(UserWarning) as caught:
        result = run_cli(["kid", a, b, "--subsets", "5", "--subset-size", "1000"])
    assert result.code == 0, result.stderr
    assert "± 0.0000" in result.stdout  # every subset is both whole sets
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("KID subset size 1000") and "--subset-size 100 or less" in message
    assert "\n" not in message and result.stderr.strip() == ""  # no note: the size was the user's


@pytest.mark.slow
def test_kid_warning_is_one_stderr_line_in_a_real_process(tmp_path):
    import subprocess
    import sys

    a = feature_file(tmp_path / "a.npz", features(1, 20))
    b = feature_file(tmp_path / "b.npz", features(2, 20))
    result = subprocess.run([sys.executable, "-m", "fidlens", "kid", a, b, "--subsets", "2", "--subset-size", "20"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()] and result.stderr.startswith("warning: KID subset")


def test_kid_default_is_1000_once_the_smaller_set_has_2000_images(tmp_path):
    fa, fb = features(1, 2000, d=4), features(2, 2100, shift=0.2, d=4)
    a, b = feature_file(tmp_path / "a.npz", fa), feature_file(tmp_path / "b.npz", fb)
    result = run_cli(["kid", a, b, "--subsets", "1", "--json"])
    assert result.code == 0, result.stderr
    assert strict_json(result.stdout)["subset_size"] == 1000
    assert result.stderr.strip() == ""  # no note, no warning


def test_kid_default_changes_only_the_cli_not_the_demo_table():
    """The demo's KID column asks for its subsets explicitly; the library defaults stay 100 x 1000."""
    from fidlens.extraction.pipeline import kid_between

    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    assert config["kid"]["num_subsets"] == 100 and config["kid"]["max_subset_size"] == 50  # 100 faces per set
    assert inspect.signature(kernel_inception_distance).parameters["max_subset_size"].default == 1000
    assert inspect.signature(kid_between).parameters["max_subset_size"].default == 1000
    assert "**kid" in inspect.getsource(__import__("fidlens.studies.demo", fromlist=["_"]))


# ----------------------------------------------------------------------------- image limits


def tiny_images(tmp: Path, name: str = "imgs") -> Path:
    folder = tmp / name
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, random_inception) -> Path:
    from fidlens.detectors.inception_weights import tf_to_torchvision_names

    path = tmp_path_factory.mktemp("weights") / "pt_inception.pth"
    torch.save(tf_to_torchvision_names(random_inception.state_dict()), path)
    return path


def _zip_accepted_by_default(tmp: Path) -> None:
    result = run_cli(["make-zip", tmp / "imgs", tmp / "d.zip", "--quiet"])
    assert result.code == 0, result.stderr
    assert "2 images" in result.stdout and (tmp / "d.zip").is_file()


LIMIT_CASES = [
    BadInput("make-zip-max-image-bytes",
             lambda t: ["make-zip", tiny_images(t), t / "d.zip", "--quiet", "--max-image-bytes", "100"],
             r"^error: image 0\.png in .*imgs is \d+ bytes, above the limit of 100 bytes", good=_zip_accepted_by_default),
    BadInput("make-zip-max-image-pixels",
             lambda t: ["make-zip", tiny_images(t), t / "d.zip", "--quiet", "--max-image-pixels", "255"],
             r"^error: image 0\.png in .*imgs is 16x16 = .*above the limit", good=_zip_accepted_by_default),
]


@table(LIMIT_CASES)
def test_make_zip_image_limits(case, tmp_path):
    check_bad_input(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("flag, value, expect", [
    ("--max-image-pixels", "255", r"^error: image 0\.png in .*imgs is 16x16 = .*above the limit"),
])
def test_stats_image_limits(flag, value, expect, tmp_path, weights_file):
    """The extraction path (fid, kid, stats and the metrics commands share it) honours the flags."""
    common = ["--weights", weights_file, "--device", "cpu", "--no-cache", "--quiet"]

    def good(tmp: Path) -> None:
        result = run_cli(["stats", tmp / "imgs", "-o", tmp / "s.npz", *common, "--json"])
        assert result.code == 0, result.stderr
        assert strict_json(result.stdout)["input"]["num_images"] == 2
        assert Statistics.load(tmp / "s.npz").num_images == 2

    case = BadInput(f"stats{flag}", lambda t: ["stats", tiny_images(t), "-o", t / "s.npz", *common, flag, value],
                    expect, good=good)
    check_bad_input(case, tmp_path)


def test_limit_flags_are_checked_while_parsing(tmp_path):
    result = run_cli(["make-zip", tmp_path, tmp_path / "d.zip", "--max-image-pixels", "0"])
    assert result.code == 2 and "argument --max-image-pixels: must be at least 1" in result.last_line


# ----------------------------------------------------------------------------- help texts


def help_text(*command: str) -> str:
    result = run_cli([*command, "--help"])
    assert result.code == 0
    return " ".join(result.stdout.split())


@pytest.mark.slow
def test_generate_help_and_the_demo_generator_agree_on_greyscale(tmp_path):
    from fidlens.generators.ppca import fit_ppca

    text = help_text("generate")
    assert "RGB for StyleGAN networks" in text and "greyscale for the ORL demo" in text
    network = tmp_path / "demo.pt"
    fit_ppca(ORL, z_dim=8, resolution=32).save(network)  # what the demo fits: ORL's greyscale faces
    result = run_cli(["generate", "--network", network, "--seeds", "0-1", "--outdir", tmp_path / "out",
                      "--device", "cpu"])
    assert result.code == 0, result.stderr
    pngs = sorted((tmp_path / "out").glob("seed*.png"))
    assert [p.name for p in pngs] == ["seed0000.png", "seed0001.png"]
    for png in pngs:
        with Image.open(png) as image:
            assert image.mode == "L" and image.size == (32, 32)


@pytest.mark.parametrize("command", ["fid", "kid", "stats"])
def test_json_and_limit_flags_are_in_the_help(command):
    text = help_text(command)
    assert "--json" in text and "docs/CLI_JSON.md" in text
    assert "--max-image-pixels" in text and "--max-image-bytes" in text


def test_kid_help_states_the_subset_default_and_only_the_checks_kid_makes():
    text = help_text("kid")
    assert "default 1000; when the smaller set has fewer than 2000 images, half of it" in text
    mismatch = text.split("--allow-mismatch")[-1].split("--json")[0]
    assert "resize conventions" in mismatch and "covariance" not in mismatch


def test_docs_list_every_json_field_the_commands_write(tmp_path):
    doc = (REPO / "docs" / "CLI_JSON.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9.]+)`", doc))
    a = feature_file(tmp_path / "a.npz", features(1, 40))
    b = feature_file(tmp_path / "b.npz", features(2, 40))
    outputs = [run_cli(["fid", a, b, "--json", "--ci", "0.9", "--bootstrap", "5", "--quiet"]),
               run_cli(["kid", a, b, "--json", "--subsets", "2"]),
               run_cli(["stats", a, "-o", tmp_path / "s.npz", "--json"])]
    for result in outputs:
        assert result.code == 0, result.stderr
        data = strict_json(result.stdout)
        sides = data.get("inputs") or [data["input"]]
        keys = set(data) | {key for side in sides for key in side}
        keys |= {f"interval.{key}" for key in (data.get("interval") or {})}
        assert keys <= documented, f"undocumented: {sorted(keys - documented)}"
