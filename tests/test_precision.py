"""The GPU precision scope: TF32 and cuDNN autotuning off while fidlens computes, the caller's flags back after.

No GPU is needed: the flags are process-wide settings that PyTorch reads when a CUDA kernel
is chosen, so checking their values at the moment the detector's and the generator's layers
run on a CPU shows they would be in force on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bad_input_harness import BadInput, check_bad_input, run_cli, table
from conftest import write_images

import fidlens.detectors.features as features_module
from fidlens.core import precision
from fidlens.core.errors import FidlensError
from fidlens.core.precision import exact_math

pytestmark = pytest.mark.skipif(not precision._new_api(), reason="these checks use PyTorch's per-operator fp32_precision API")

# Deliberately unusual caller settings, none equal to what exact_math applies.
CALLER = {"cuda.matmul": "tf32", "cudnn.conv": "tf32", "cudnn.rnn": "none", "mkldnn.matmul": "bf16",
          "mkldnn.conv": "none", "cudnn_benchmark": True, "cudnn_deterministic": False}
EXACT = {"cuda.matmul": "ieee", "cudnn.conv": "ieee", "cudnn.rnn": "ieee", "mkldnn.matmul": "ieee",
         "mkldnn.conv": "ieee", "cudnn_benchmark": False, "cudnn_deterministic": True}


@pytest.fixture()
def caller_flags():
    """Set CALLER's flags for the test and put the session's own back afterwards."""
    saved = precision._snapshot()
    precision._apply(CALLER)
    yield
    precision._apply(saved)


def test_flags_inside_and_restored_after(caller_flags):
    assert precision._snapshot() == CALLER
    with exact_math() as described:
        assert precision._snapshot() == EXACT
        assert described == {"tf32": False, "cudnn_benchmark": False, "cudnn_deterministic": True,
                             "fp32_precision": {k: "ieee" for k in precision._LEAVES}}
    assert precision._snapshot() == CALLER


def test_restored_when_the_block_raises(caller_flags):
    with pytest.raises(RuntimeError, match="boom"), exact_math():
        assert precision._snapshot() == EXACT
        raise RuntimeError("boom")
    assert precision._snapshot() == CALLER


def test_nested_scopes_restore_level_by_level(caller_flags):
    with exact_math():
        with exact_math(allow_tf32=True):
            inner = precision._snapshot()
            assert inner["cuda.matmul"] == "tf32" and inner["cudnn.conv"] == "tf32" and inner["cudnn_benchmark"]
            assert inner["mkldnn.matmul"] == "ieee"  # CPU never drops to bf16, even on opt-in
        assert precision._snapshot() == EXACT
    assert precision._snapshot() == CALLER


@pytest.mark.parametrize(("value", "tf32"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_env_opt_in(monkeypatch, caller_flags, value, tf32):
    monkeypatch.setenv(precision.ENV_ALLOW_TF32, value)
    with exact_math() as described:
        assert described["tf32"] is tf32
        assert precision._snapshot()["cudnn.conv"] == ("tf32" if tf32 else "ieee")
    assert precision.configured()["tf32"] is tf32
    assert precision._snapshot() == CALLER


def test_env_typo_is_one_line_error_and_changes_nothing(monkeypatch, caller_flags):
    monkeypatch.setenv(precision.ENV_ALLOW_TF32, "maybe")
    with pytest.raises(FidlensError, match=r"FIDLENS_ALLOW_TF32='maybe' is not understood") as info, exact_math():
        pass  # pragma: no cover - never reached
    assert "\n" not in str(info.value)
    assert precision._snapshot() == CALLER


def _record_flags(seen: list[dict]):
    return lambda *_: seen.append(precision._snapshot())


def test_extract_features_runs_the_detector_inside_the_scope(tmp_path, rng, monkeypatch, caller_flags, random_inception):
    from fidlens.data.datasets import open_image_source

    entered: list[bool] = []
    real = features_module.exact_math

    def recording(*args, **kwargs):
        entered.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(features_module, "exact_math", recording)
    folder = write_images(tmp_path / "imgs", [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2)])
    seen: list[dict] = []
    handle = random_inception.layers.register_forward_pre_hook(_record_flags(seen))
    try:
        out = features_module.extract_features(open_image_source(folder), random_inception, batch_size=2, progress=False)
    finally:
        handle.remove()
    assert entered, "extract_features did not enter exact_math"
    assert seen and all(s == EXACT for s in seen)
    assert out["features"].shape == (2, 2048)
    assert precision._snapshot() == CALLER


def test_detector_alone_is_exact_too(caller_flags, random_inception):
    """Every detector call (heatmaps, pairs, generated sets) goes through forward_normalized."""
    seen: list[dict] = []
    handle = random_inception.layers.register_forward_pre_hook(_record_flags(seen))
    try:
        with torch.inference_mode():
            random_inception.extract(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    finally:
        handle.remove()
    assert seen == [EXACT]
    assert precision._snapshot() == CALLER


def test_generators_run_inside_the_scope(caller_flags):
    from fidlens.generators.generate import images_for_seeds
    from fidlens.generators.stylegan2 import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 64, "channel_max": 8, "num_fp16_res": 4}).eval()
    seen: list[dict] = []
    handles = [G.mapping.register_forward_pre_hook(_record_flags(seen)),
               G.synthesis.register_forward_pre_hook(_record_flags(seen))]
    try:
        images = images_for_seeds(G, [0, 1])
    finally:
        for h in handles:
            h.remove()
    assert images.shape == (2, 3, 8, 8) and images.dtype == torch.uint8
    assert len(seen) == 2 and all(s == EXACT for s in seen)
    assert precision._snapshot() == CALLER


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_metadata_records_the_setting(tmp_path, rng, monkeypatch, random_inception):
    from fidlens.extraction.pipeline import ExtractionSettings, compute_features, statistics_from_features
    from fidlens.metrics.stats import Statistics

    folder = write_images(tmp_path / "imgs", [rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(3)])
    settings = ExtractionSettings(batch_size=3, workers=0, progress=False, cache="")
    features = compute_features(folder, random_inception, settings=settings)
    assert features.meta["gpu_precision"] == precision.configured()
    assert features.meta["gpu_precision"]["tf32"] is False
    stats = statistics_from_features(features)
    stats.save(tmp_path / "s.npz")
    assert Statistics.load(tmp_path / "s.npz").meta["gpu_precision"] == precision.configured()

    monkeypatch.setenv(precision.ENV_ALLOW_TF32, "1")
    opted = compute_features(folder, random_inception, settings=settings)
    assert opted.meta["gpu_precision"]["tf32"] is True
    np.testing.assert_array_equal(opted.pool3, features.pool3)  # on a CPU TF32 changes nothing


# --- the opt-in's one bad input, through the real CLI ---------------------------------------

def _stats_argv(tmp_path):
    folder = write_images(tmp_path / "imgs", [np.full((24, 24, 3), v, dtype=np.uint8) for v in (40, 90, 160)])
    return ["stats", folder, "-o", tmp_path / "s.npz", "--no-cache", "--device", "cpu"]


def _good_stats_after_fixing_the_env(tmp_path):
    import os

    from fidlens.metrics.stats import Statistics

    os.environ.pop(precision.ENV_ALLOW_TF32, None)
    result = run_cli(_stats_argv(tmp_path))
    assert result.code == 0, result.stderr
    meta = Statistics.load(tmp_path / "s.npz").meta
    assert meta["gpu_precision"]["tf32"] is False and meta["num_images"] == 3


CASES = [
    BadInput("allow-tf32-typo", _stats_argv, r"error: FIDLENS_ALLOW_TF32='maybe' is not understood",
             good=_good_stats_after_fixing_the_env),
]


@pytest.mark.slow
@table(CASES)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bad_opt_in_value_through_the_cli(case, tmp_path, monkeypatch, default_weights):
    monkeypatch.setenv(precision.ENV_ALLOW_TF32, "maybe")
    check_bad_input(case, tmp_path)


def test_tf32_features_have_their_own_cache_key(monkeypatch):
    from fidlens.metrics.stats import feature_cache_key

    exact = feature_cache_key("a" * 64, "b" * 64, want_logits=False)
    monkeypatch.setenv(precision.ENV_ALLOW_TF32, "1")
    opted = feature_cache_key("a" * 64, "b" * 64, want_logits=False)
    monkeypatch.setenv(precision.ENV_ALLOW_TF32, "0")
    assert opted != exact and feature_cache_key("a" * 64, "b" * 64, want_logits=False) == exact
