"""Detectors as plug-ins: the registry, `DetectorSpec`, precomputed embeddings, a custom detector, feature files.

Why: FD/KID and the feature-only studies must work with any feature extractor without editing
the pipeline, and a detector swap must never change what Inception computes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, write_images

from fidlens.cli.main import main as cli_main
from fidlens.core.errors import AssetError, FidlensError, StatisticsError
from fidlens.detectors import registry
from fidlens.detectors.base import Detector, DetectorConfigDeprecation, DetectorSpec, spec_for_job
from fidlens.detectors.registry import (
    LazyDetector,
    available_detectors,
    load_detector,
    reads_images,
)
from fidlens.extraction.pipeline import (
    ExtractionSettings,
    compute_features,
    fid_between,
    kid_between,
    resolve_features,
    resolve_statistics,
    statistics_from_features,
)
from fidlens.metrics.feature_files import read_feature_file
from fidlens.metrics.frechet import frechet_distance, mean_and_covariance
from fidlens.metrics.stats import FeatureSet, Statistics


def _fid_of(out: str) -> float:
    return float(out.split("FID: ")[1].split()[0])


def _reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    mu1, s1 = mean_and_covariance(x.astype(np.float64), unbiased=True)
    mu2, s2 = mean_and_covariance(y.astype(np.float64), unbiased=True)
    return frechet_distance(mu1, s1, mu2, s2)


# ----------------------------------------------------------------------------- registry and spec


def test_registry_lists_the_three_builtin_detectors_without_importing_torch():
    assert {"inception", "clip", "precomputed"} <= set(available_detectors())
    assert reads_images("inception") and reads_images({"name": "clip"}) and not reads_images("precomputed")
    with pytest.raises(FidlensError, match=r"unknown detector 'dinov3'; available: .*inception.*precomputed"):
        load_detector("dinov3")
    code = ("import sys; from fidlens.detectors.registry import available_detectors, load_detector; "
            "available_detectors(); load_detector('precomputed'); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr


def test_spec_from_config_reads_the_new_form_and_the_legacy_key():
    assert DetectorSpec.from_config({}) == DetectorSpec("inception", "default")
    assert DetectorSpec.from_config({"detector": {"name": "clip", "weights": "/w/ViT-B-32.pt"}}) == \
        DetectorSpec("clip", "/w/ViT-B-32.pt")
    assert DetectorSpec.from_config({"detector": {"name": "precomputed"}}).weights == "default"
    with pytest.warns(DetectorConfigDeprecation, match=r"'inception_weights' is deprecated; write detector: "
                                                       r"\{name: inception, weights: nvidia.pt\}"):
        legacy = DetectorSpec.from_config({"inception_weights": "nvidia.pt"})
    assert legacy == DetectorSpec("inception", "nvidia.pt")
    with pytest.raises(FidlensError, match="both 'detector' and the legacy 'inception_weights'"):
        DetectorSpec.from_config({"detector": {"name": "inception"}, "inception_weights": "default"})
    with pytest.raises(FidlensError, match=r"unknown key\(s\) weight"):
        DetectorSpec.from_config({"detector": {"name": "inception", "weight": "x"}})
    with pytest.raises(FidlensError, match="non-empty"):
        DetectorSpec.from_config({"inception_weights": ""})
    spec = DetectorSpec("clip", "a.pt")
    assert DetectorSpec.from_any(spec.as_dict()) == spec and DetectorSpec.from_any("clip") == DetectorSpec("clip")
    assert DetectorSpec.from_any(None) == DetectorSpec()


def test_a_job_runs_its_params_detector_on_its_declared_weights_input():
    job = SimpleNamespace(params=SimpleNamespace(detector={"name": "inception", "weights": "default"}),
                          input=SimpleNamespace(weights="resources/weights/nvidia.pt"))
    assert spec_for_job(job) == DetectorSpec("inception", "resources/weights/nvidia.pt")
    no_input = SimpleNamespace(params=SimpleNamespace(detector={"name": "clip", "weights": "c.pt"}),
                               input=SimpleNamespace())
    assert spec_for_job(no_input) == DetectorSpec("clip", "c.pt")
    legacy = SimpleNamespace(params=SimpleNamespace(), input=SimpleNamespace(weights="w/default_1.pt"))
    assert spec_for_job(legacy) == DetectorSpec("inception", "w/default_1.pt")
    with pytest.raises(FidlensError, match="names no detector"):
        spec_for_job(SimpleNamespace(params=SimpleNamespace(), input=SimpleNamespace()))
    assert DetectorSpec("inception", "default").record_name() == "default_1.pt"
    assert DetectorSpec("inception", "/r/w/inception-2015-12-05.pt").record_name() == "inception-2015-12-05.pt"


# ----------------------------------------------------------------------------- precomputed embeddings


@pytest.fixture()
def embeddings(tmp_path, rng):
    x = rng.normal(size=(60, 16)).astype(np.float32)
    y = (rng.normal(size=(50, 16)) * 1.3 + 0.4).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", features=y, logits=rng.normal(size=(50, 4)).astype(np.float32))
    return tmp_path / "a.npy", tmp_path / "b.npz", x, y


def test_precomputed_fid_through_the_cli_and_the_api_equals_frechet_on_the_arrays(embeddings, capsys):
    a, b, x, y = embeddings
    expected = _reference_fid(x, y)
    assert cli_main(["fid", str(a), str(b), "--detector", "precomputed", "--weights", "dinov2-vits14"]) == 0
    assert abs(_fid_of(capsys.readouterr().out) - expected) <= 1e-12 * max(1.0, expected)

    factory = LazyDetector(DetectorSpec("precomputed", "dinov2-vits14"), load_detector)
    sa, sb = resolve_statistics(a, factory), resolve_statistics(b, factory)
    assert abs(fid_between(sa, sb) - expected) <= 1e-12 * max(1.0, expected)
    assert sa.meta["detector"] == "dinov2-vits14" and sa.meta["resize"] == "precomputed"
    fb = resolve_features(b, factory)
    assert fb.logits.shape == (50, 4) and fb.meta["detector_spec"]["feature_dim"] == 16
    # KID on the same arrays goes through the same reader
    mean, _ = kid_between(resolve_features(a, factory), fb, num_subsets=3, max_subset_size=20)
    assert np.isfinite(mean)


def test_precomputed_refuses_mismatched_dims_nan_and_images(embeddings, tmp_path, rng, capsys):
    a, _, x, _ = embeddings
    np.save(tmp_path / "narrow.npy", rng.normal(size=(40, 8)).astype(np.float32))
    assert cli_main(["fid", str(a), str(tmp_path / "narrow.npy"), "--detector", "precomputed"]) == 2
    assert "feature dimensions differ" in capsys.readouterr().err
    bad = x.copy()
    bad[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    assert cli_main(["fid", str(a), str(tmp_path / "nan.npy"), "--detector", "precomputed"]) == 2
    assert "NaN or infinite" in capsys.readouterr().err
    folder = write_images(tmp_path / "imgs", [np.zeros((8, 8, 3), np.uint8)] * 2)
    assert cli_main(["fid", str(a), str(folder), "--detector", "precomputed"]) == 2
    err = capsys.readouterr().err
    assert "reads embeddings from .npy or .npz files" in err and err.count("\n") == 1
    detector = load_detector("precomputed")
    with pytest.raises(FidlensError, match="no network"):
        detector.features(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, {"b": 2}], dtype=object))
    with pytest.raises(StatisticsError, match="must be real numbers"):
        detector.read(tmp_path / "objects.npy")


def test_an_npy_given_to_an_image_detector_gets_a_hint(embeddings):
    a, _, _, _ = embeddings
    with pytest.raises(FidlensError, match=r"is an array file, not images; .* use --detector precomputed"):
        compute_features(a, _TinyDetector(DetectorSpec("tiny")))


def test_heatmaps_refuse_a_detector_without_a_spatial_map(rng):
    from fidlens.studies.heatmap import FidSensitivity

    feats = rng.normal(size=(30, 4))
    stats = Statistics.from_features(feats, meta={})
    with pytest.raises(FidlensError, match="'precomputed' detector has no spatial feature map"):
        FidSensitivity(load_detector("precomputed"), stats, stats)


# ----------------------------------------------------------------------------- a custom detector


class _TinyDetector:
    """Per-channel mean, standard deviation and maximum of each image: 9 features, no network, no weights."""

    name = "tiny"
    feature_dim = 9
    has_logits = False
    logits_dim = None
    resize = "none"
    weights_name = "tiny-v1"
    weights_sha256 = "1" * 64
    reads_images = True
    supports_heatmaps = False
    device = torch.device("cpu")

    def __init__(self, spec: DetectorSpec):
        self.spec = spec

    def to(self, device):
        return self

    def features(self, images, *, want_logits=False):
        batches = images if isinstance(images, list) else [images]
        rows = []
        for batch in batches:
            x = batch.double()
            rows.append(torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1))
        return {"features": torch.cat(rows)}


def _tiny_by_hand(images: list[np.ndarray]) -> np.ndarray:
    rows = []
    for im in images:
        x = im.astype(np.float64).reshape(-1, 3)
        rows.append(np.concatenate([x.mean(0), x.std(0, ddof=1), x.max(0)]))
    return np.array(rows, dtype=np.float32)


def test_a_custom_detector_is_one_class_and_one_line(tmp_path, rng, monkeypatch, capsys):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after the test
    registry.register("tiny")(lambda spec, device: _TinyDetector(spec))  # the one line

    images = [rng.integers(0, 256, size=(12 + (i % 2) * 5, 10, 3), dtype=np.uint8) for i in range(5)]
    folder = write_images(tmp_path / "set", images)
    detector = load_detector({"name": "tiny", "weights": "v1"})
    assert isinstance(detector, Detector)
    settings = ExtractionSettings(batch_size=2, progress=False, cache=tmp_path / "cache")
    features = compute_features(folder, detector, settings=settings)
    np.testing.assert_allclose(features.features, _tiny_by_hand(images), rtol=1e-6)
    spec = features.meta["detector_spec"]
    assert spec == {"name": "tiny", "weights": "v1", "weights_name": "tiny-v1", "weights_sha256": "1" * 64,
                    "feature_dim": 9, "logits_dim": None, "resize": "none"}
    assert features.meta["resize"] == "none" and features.meta["detector"] == "tiny-v1"
    again = compute_features(folder, detector, settings=settings)  # from the cache, keyed by the detector too
    np.testing.assert_array_equal(again.features, features.features)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    out = tmp_path / "s.npz"
    assert cli_main(["stats", str(folder), "-o", str(out), "--detector", "tiny", "--no-cache", "--quiet"]) == 0
    stats = Statistics.load(out)
    assert stats.mu.shape == (9,) and stats.meta["resize"] == "none"
    np.testing.assert_allclose(stats.mu, _tiny_by_hand(images).astype(np.float64).mean(0), rtol=1e-6)


# ----------------------------------------------------------------------------- feature files


def test_old_pool3_feature_files_still_load(tmp_path, rng, capsys):
    rows = rng.normal(size=(20, 32)).astype(np.float32)
    meta = {"num_images": 20, "detector": "default_1.pt", "detector_sha256": "a" * 64, "fidlens_version": "0.1.0"}
    old = tmp_path / "old.npz"
    with open(old, "wb") as handle:  # exactly as FeatureSet.save wrote feature files before the rename
        np.savez(handle, pool3=rows, meta=np.array(json.dumps(meta)))
    loaded = FeatureSet.load(old)
    np.testing.assert_array_equal(loaded.features, rows)
    np.testing.assert_array_equal(loaded.pool3, rows)  # the read alias
    read = read_feature_file(old, max_images=5)
    assert read.meta["detector"] == "default_1.pt" and read.features.shape == (5, 32)

    new = tmp_path / "new.npz"
    FeatureSet(features=rows, meta=meta).save(new)
    with np.load(new) as data:
        assert "features" in data.files and "pool3" not in data.files
    assert cli_main(["kid", str(old), str(new), "--subsets", "2", "--subset-size", "10"]) == 0
    expected, _ = kid_between(FeatureSet.load(old), FeatureSet.load(new), num_subsets=2, max_subset_size=10)
    assert f"KID: {expected}" in capsys.readouterr().out
    with pytest.raises(TypeError, match="once"):
        FeatureSet(features=rows, pool3=rows, meta={})


@pytest.mark.slow
def test_inception_features_record_the_detector_and_equal_the_old_call(random_inception, tmp_path, rng):
    images = torch.from_numpy(rng.integers(0, 256, size=(2, 3, 40, 33), dtype=np.uint8))
    with torch.inference_mode():
        new = random_inception.features(images, want_logits=True)
        old = random_inception.extract(images, want_logits=True)
    assert torch.equal(new["features"], old.pool3) and torch.equal(new["logits"], old.logits)
    folder = write_images(tmp_path / "f", [rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8) for _ in range(3)])
    features = compute_features(folder, random_inception, settings=ExtractionSettings(progress=False, cache=""))
    record = features.meta["detector_spec"]
    assert record["name"] == "inception" and record["feature_dim"] == 2048 and record["logits_dim"] == 1008
    assert record["resize"] == "tf1-legacy-bilinear" == features.meta["resize"]
    stats = statistics_from_features(features)
    assert "detector_spec" not in stats.meta and stats.meta["resize"] == "tf1-legacy-bilinear"


def test_clip_through_the_registry_equals_the_clip_encoder(tmp_path, rng):
    from fidlens.data.datasets import open_image_source
    from fidlens.detectors.clip_encoder import (
        ClipVisionTransformer,
        clip_features,
        load_clip_encoder,
    )

    torch.manual_seed(0)
    tiny = ClipVisionTransformer(input_resolution=32, patch_size=8, width=128, layers=1, heads=2, output_dim=16)
    weights = tmp_path / "tiny-clip.pt"
    torch.save({f"visual.{k}": v for k, v in tiny.state_dict().items()}, weights)
    folder = write_images(tmp_path / "f", [rng.integers(0, 256, size=(40, 30 + 4 * i, 3), dtype=np.uint8)
                                           for i in range(3)])
    detector = load_detector({"name": "clip", "weights": str(weights)}, device="cpu")
    assert detector.feature_dim == 16 and not detector.has_logits and not detector.supports_heatmaps
    features = compute_features(folder, detector, settings=ExtractionSettings(progress=False, cache=""))
    expected = clip_features(open_image_source(folder), load_clip_encoder(weights), progress=False)
    np.testing.assert_array_equal(features.features, expected)
    assert features.meta["detector_spec"]["name"] == "clip" and features.meta["detector"] == "tiny-clip.pt"
    with pytest.raises(AssetError, match="CLIP weights not found"):
        load_detector({"name": "clip", "weights": str(tmp_path / "missing.pt")}, device="cpu")


# ----------------------------------------------------------------------------- first-use download


def test_default_weights_are_fetched_once_unless_offline(tmp_path, monkeypatch, capsys):
    from fidlens.cli.first_use import ensure_default_weights

    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FIDLENS_OFFLINE", raising=False)
    target = tmp_path / "home" / "weights" / "default_1.pt"
    calls, lines = [], []

    def fake_fetch() -> str:
        calls.append(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")
        return f"Inception weights ready at {target}"

    ensure_default_weights(DetectorSpec(), log=lines.append, fetch=fake_fetch)
    ensure_default_weights(DetectorSpec(), log=lines.append, fetch=fake_fetch)
    assert calls == [1] and "first use" in lines[0] and str(target) in lines[0] and "sha256 checked" in lines[1]
    ensure_default_weights(DetectorSpec("precomputed"), fetch=fake_fetch)
    ensure_default_weights(DetectorSpec("inception", "/some/file.pt"), fetch=fake_fetch)
    assert calls == [1]

    target.unlink()
    with pytest.raises(AssetError, match="--no-download forbids fetching them; run `fidlens fetch-inception`"):
        ensure_default_weights(DetectorSpec(), allow_download=False, fetch=fake_fetch)
    monkeypatch.setenv("FIDLENS_OFFLINE", "1")
    with pytest.raises(AssetError, match="FIDLENS_OFFLINE=1 forbids"):
        ensure_default_weights(DetectorSpec(), fetch=fake_fetch)
    assert calls == [1]
    folder = write_images(tmp_path / "imgs", [np.zeros((8, 8, 3), np.uint8)] * 2)
    assert cli_main(["fid", str(folder), str(folder), "--device", "cpu", "--quiet"]) == 2
    assert "FIDLENS_OFFLINE=1 forbids" in capsys.readouterr().err


# ----------------------------------------------------------------------------- no torch for statistics files


def _run_cli_and_report_torch(args: list[str], env: dict) -> subprocess.CompletedProcess:
    code = ("import sys; from fidlens.cli.main import main; rc = main(sys.argv[1:]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env)


@pytest.mark.slow
def test_fid_of_two_statistics_files_does_not_import_torch(tmp_path, rng):
    for name, shift in (("a", 0.0), ("b", 0.5)):
        Statistics.from_features(rng.normal(size=(40, 8)) + shift, meta={"detector_sha256": "d" * 64}).save(
            tmp_path / f"{name}.npz")
    env = {**os.environ, "FIDLENS_HOME": str(tmp_path / "home")}
    result = _run_cli_and_report_torch(["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")], env)
    assert result.stdout.split()[-2:] == ["NO-TORCH", "0"], result.stderr
    assert "FID: " in result.stdout


@pytest.mark.slow
def test_fid_with_an_image_folder_does_import_torch(tmp_path, rng):
    """The check above is not vacuous: the same probe sees torch once images meet the network."""
    from fidlens.detectors.inception import FidInceptionV3
    from fidlens.detectors.inception_weights import tf_to_torchvision_names

    weights = tmp_path / "random.pth"  # an unpublished name: loaded as the user's own weights
    torch.save(tf_to_torchvision_names(FidInceptionV3(with_logits=False).state_dict()), weights)
    folder = write_images(tmp_path / "imgs", [rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
                                              for _ in range(3)])
    Statistics.from_features(rng.normal(size=(40, 2048)), meta={}).save(tmp_path / "wide.npz")
    env = {**os.environ, "FIDLENS_HOME": str(tmp_path / "home")}
    result = _run_cli_and_report_torch(["fid", str(folder), str(tmp_path / "wide.npz"), "--weights", str(weights),
                                        "--device", "cpu", "--no-cache", "--quiet"], env)
    assert result.stdout.split()[-2:] == ["TORCH", "0"], result.stderr


def test_pipeline_and_registry_modules_import_without_torch():
    code = ("import sys; import fidlens.extraction.pipeline, fidlens.detectors.registry, fidlens.detectors.base, "
            "fidlens.detectors.precomputed, fidlens.cli.main; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr
