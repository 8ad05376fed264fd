"""Hostile files: weights, generator pickles and resampling checkpoints that try to run code or lie.

Table cases go through the real CLI (tests/bad_input_harness.py): a one-line refusal, exit 2,
no traceback, nothing left behind, no marker file from a planted payload, and the next good
run gives the right answer. The resampling checkpoint has no CLI command that resumes it, so
it is tested through the run API. The sha256 stamp tests count the hashing calls.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input_harness import BadInput, check_bad_input, run_cli, table
from conftest import ORL
from crafted_files import (
    MarkerPayload,
    copy_default_weights,
    cyclic_torchscript,
    deep_torchscript,
    floats,
    planted_torch_save,
    planted_torchscript,
    scale_first_conv_in_place,
    scaled_copy,
    tensor_archive,
    tiny_stylegan2,
    wide_dag_torchscript,
    with_kwargs,
    with_synthesis,
    write_deep_kwargs_pickle,
    write_generator_pickle,
    write_setstate_torchscript,
)
from PIL import Image

from fidlens.assets import store as assets
from fidlens.assets.store import DEFAULT_INCEPTION, default_inception_path, file_sha256, stamp_path
from fidlens.core.errors import AssetError
from fidlens.generators.base import to_uint8
from fidlens.detectors.inception_weights import load_inception
from fidlens.metrics.stats import Statistics

# ---------------------------------------------------------------- weights files, via `fidlens stats`


def _images(tmp: Path) -> Path:
    folder = tmp / "faces"
    folder.mkdir(exist_ok=True)
    for i in range(3):
        shutil.copy(ORL / "s1" / f"{i + 1}.pgm", folder / f"{i + 1}.pgm")
    return folder


def _stats_argv(tmp: Path, weights: Path | str = "default", out: str = "out.npz") -> list:
    return ["stats", _images(tmp), "-o", tmp / out, "--weights", weights, "--device", "cpu", "--no-cache", "--quiet"]


_REFERENCE: dict[str, np.ndarray] = {}
REAL_DEFAULT = default_inception_path()  # before any test points FIDLENS_HOME elsewhere


def _reference_mu(tmp: Path) -> np.ndarray:
    """mu of the 3 faces with the real default weights, computed once by a clean run."""
    if "mu" not in _REFERENCE:
        clean = tmp.parent / f"{tmp.name}-reference"
        clean.mkdir()
        home = clean / "home"
        (home / "weights").mkdir(parents=True)
        os.symlink(REAL_DEFAULT, home / "weights" / "default_1.pt")
        saved = os.environ.get("FIDLENS_HOME")
        os.environ["FIDLENS_HOME"] = str(home)
        try:
            result = run_cli(_stats_argv(clean))
        finally:
            if saved is None:
                os.environ.pop("FIDLENS_HOME", None)
            else:
                os.environ["FIDLENS_HOME"] = saved
        assert result.code == 0, result.stderr
        _REFERENCE["mu"] = Statistics.load(clean / "out.npz").mu
    return _REFERENCE["mu"]


def _good_stats_run(tmp: Path) -> None:
    """With the genuine default weights back in place, stats come out exactly as a clean run's."""
    expected = _reference_mu(tmp)
    weights = Path(os.environ["FIDLENS_HOME"]) / "weights" / "default_1.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.unlink(missing_ok=True)
    os.symlink(REAL_DEFAULT, weights)
    result = run_cli(_stats_argv(tmp, out="good.npz"))
    assert result.code == 0, result.stderr
    stats = Statistics.load(tmp / "good.npz")
    np.testing.assert_array_equal(stats.mu, expected)
    assert stats.meta["detector_sha256"] == DEFAULT_INCEPTION.sha256 and stats.meta["detector"] == "default_1.pt"


def _no_marker(tmp: Path) -> None:
    assert not (tmp / "marker").exists(), "a planted payload ran"


def _then_good(tmp: Path) -> None:
    _no_marker(tmp)
    _good_stats_run(tmp)


def _tampered_default(tmp: Path, truncate: bool = False) -> list:
    weights = copy_default_weights(REAL_DEFAULT, Path(os.environ["FIDLENS_HOME"]))
    if truncate:
        with open(weights, "r+b") as handle:
            handle.truncate(weights.stat().st_size // 2)
    else:
        scale_first_conv_in_place(weights, 1.05, keep_mtime=True)
    return _stats_argv(tmp)


def _fake_published(name: str):
    def build(tmp: Path) -> list:
        path = tmp / name
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
        return _stats_argv(tmp, path)
    return build


def _setstate_torchscript(tmp: Path) -> list:
    write_setstate_torchscript(tmp / "setstate.pt", tmp / "marker")
    return _stats_argv(tmp, tmp / "setstate.pt")


def _scripted_linear(tmp: Path) -> list:
    path = tmp / "linear.pt"
    torch.jit.script(torch.nn.Linear(3, 2)).save(str(path))
    return _stats_argv(tmp, path)


def _junk(tmp: Path) -> list:
    path = tmp / "junk.pt"
    path.write_bytes(os.urandom(2048))
    return _stats_argv(tmp, path)


def _weights_case(id: str, build, expect: str) -> BadInput:
    return BadInput(id, build, expect, good=_then_good)


_WRONG_GRAPH = r"does not hold the FID Inception graph"
WEIGHT_CASES = [
    _weights_case("torchscript-setstate-writes-a-file", _setstate_torchscript, _WRONG_GRAPH),
    _weights_case("torchscript-state-holds-os-system",
                  lambda t: _stats_argv(t, planted_torchscript(t / "planted.pt", t / "marker")), _WRONG_GRAPH),
    _weights_case("torch-save-data-pkl-runs-os-system",
                  lambda t: _stats_argv(t, planted_torch_save(t / "planted.pth", t / "marker")),
                  r"cannot read Inception weights .*planted\.pth"),
    _weights_case("default-1-pt-one-conv-scaled-1.05-same-size-and-mtime", _tampered_default,
                  rf"default_1\.pt is not the published default_1\.pt: its sha256 is [0-9a-f]{{64}}, expected "
                  rf"{DEFAULT_INCEPTION.sha256}; run `fidlens fetch-inception`"),
    _weights_case("default-1-pt-truncated", lambda t: _tampered_default(t, truncate=True),
                  rf"not the published default_1\.pt.*expected {DEFAULT_INCEPTION.sha256}"),
    _weights_case("state-dict-named-like-nvidia-weights", _fake_published("inception-2015-12-05.pt"),
                  r"not the published inception-2015-12-05\.pt.*expected f58cb9b6.*--url https://"),
    _weights_case("state-dict-named-like-pytorch-fid-weights",
                  _fake_published("pt_inception-2015-12-05-6726825d.pth"),
                  r"not the published pt_inception-2015-12-05-6726825d\.pth.*expected 6726825d"),
    _weights_case("torchscript-object-contains-itself",
                  lambda t: _stats_argv(t, cyclic_torchscript(t / "cyclic.pt")), r"cyclic reference"),
    _weights_case("torchscript-objects-nested-5000-deep",
                  lambda t: _stats_argv(t, deep_torchscript(t / "deep.pt")), r"nested more than 100 deep"),
    _weights_case("torchscript-shared-objects-2-to-the-40-paths",
                  lambda t: _stats_argv(t, wide_dag_torchscript(t / "dag.pt")), r"more than 100,000 objects"),
    _weights_case("tensor-reaches-past-its-storage",
                  lambda t: _stats_argv(t, tensor_archive(t / "past.pt", numel=2, record=floats([1, 2]), size=(3,),
                                                          stride=(1,))), r"reaches past its storage"),
    _weights_case("storage-record-shorter-than-declared",
                  lambda t: _stats_argv(t, tensor_archive(t / "short.pt", numel=4, record=floats([1, 2]), size=(2,),
                                                          stride=(1,))), r"has 8 bytes, its tensor record says 16"),
    _weights_case("storage-record-compressed",
                  lambda t: _stats_argv(t, tensor_archive(t / "deflated.pt", numel=2, record=floats([1, 2]),
                                                          size=(2,), stride=(1,), compress=True)), r"compressed"),
    _weights_case("torchscript-of-another-network", _scripted_linear, _WRONG_GRAPH),
    _weights_case("random-bytes-named-pt", _junk, r"not a PyTorch weights file"),
]


@pytest.mark.slow
@table(WEIGHT_CASES)
def test_bad_weight_files(case, tmp_path, monkeypatch, default_weights):
    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    check_bad_input(case, tmp_path)


# ---------------------------------------------------------------- generator pickles, via `fidlens generate`


def _generate_argv(tmp: Path, network: Path, command: str = "generate") -> list:
    if command == "probe":
        return ["probe", "--network", network, "--seed", "0", "--count", "2", "--outdir", tmp / "out",
                "--device", "cpu", "--no-face-scores", "--quiet"]
    if command == "heatmap":
        ref, gen = tmp / "ref.npz", tmp / "gen.npz"
        for path, seed in ((ref, 1), (gen, 2)):
            Statistics.from_features(np.random.default_rng(seed).normal(size=(12, 8))).save(path)
        return ["heatmap", "--reference", ref, "--generated", gen, "--network", network, "--seeds", "0",
                "--outdir", tmp / "out", "--device", "cpu"]
    return ["generate", "--network", network, "--seeds", "0", "--outdir", tmp / "out", "--device", "cpu"]


def _good_generation(tmp: Path) -> None:
    """A genuine pickle generates seed 0 exactly as the generator it was written from."""
    _no_marker(tmp)
    G = tiny_stylegan2(seed=3)
    network = write_generator_pickle(tmp / "good.pkl", G=G)
    result = run_cli(["generate", "--network", network, "--seeds", "0", "--outdir", tmp / "good", "--device", "cpu"])
    assert result.code == 0, result.stderr
    z = torch.from_numpy(np.random.RandomState(0).randn(1, G.z_dim)).float()
    with torch.no_grad():
        expected = to_uint8(G(z, None, noise_mode="const"))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp / "good" / "seed0000.png")), expected)


def _pickle_case(id: str, kwargs=None, expect: str = "", *, mutate=None, command: str = "generate",
                 build=None) -> BadInput:
    def default_build(tmp: Path) -> list:
        return _generate_argv(tmp, write_generator_pickle(tmp / "crafted.pkl", kwargs, mutate=mutate), command)
    return BadInput(id, build or default_build, expect, good=_good_generation)


def _cyclic_kwargs() -> dict:
    kwargs = with_kwargs()
    kwargs["mapping_kwargs"]["again"] = kwargs["mapping_kwargs"]
    return kwargs


def _self_child(record) -> dict:
    modules = record.meta["state"]["_modules"]
    modules["loop"] = record
    return {"modules": modules}  # pickled first, so it is filled (with the record) after the record exists


def _no_synthesis(record) -> None:
    record.meta["state"]["_modules"].pop("synthesis")


def _kwargs_list(record) -> None:
    record.meta["state"]["_init_kwargs"] = [1, 2, 3]


_RESOLUTION = r"img_resolution=.* power of two from 4 to 4096"
GENERATOR_CASES = [
    _pickle_case("kwargs-contain-themselves", _cyclic_kwargs(), r"contains itself \(a cyclic reference\)"),
    BadInput("kwargs-nested-100000-deep",
             lambda t: _generate_argv(t, write_deep_kwargs_pickle(t / "deep.pkl")), r"nested more than 16 levels deep",
             good=_good_generation),
    _pickle_case("resolution-2-to-the-20", with_kwargs(img_resolution=2**20), _RESOLUTION),
    _pickle_case("resolution-negative", with_kwargs(img_resolution=-16), _RESOLUTION),
    _pickle_case("resolution-not-a-power-of-two", with_kwargs(img_resolution=24), _RESOLUTION),
    _pickle_case("resolution-a-string", with_kwargs(img_resolution="256"), r"img_resolution .* not an integer"),
    _pickle_case("architecture-unknown", with_synthesis(architecture="bogus"),
                 r"unknown StyleGAN2 architecture 'bogus'"),
    _pickle_case("z-dim-a-word", with_kwargs(z_dim="sixteen"), r"z_dim .* 'sixteen', not an integer"),
    _pickle_case("w-dim-a-fraction", with_kwargs(w_dim=16.5), r"w_dim .* not an integer"),
    _pickle_case("mapping-kwargs-a-list", with_kwargs(mapping_kwargs=[1, 2]), r"mapping_kwargs .* list, not a dict"),
    _pickle_case("img-channels-none", with_kwargs(img_channels=None), r"img_channels .* not an integer"),
    _pickle_case("z-dim-ten-million", with_kwargs(z_dim=10**7), r"z_dim=10000000 .* outside 1\.\.8192"),
    _pickle_case("channel-base-absurd", with_synthesis(channel_base=2**40), r"channel_base=.* outside 0\.\."),
    _pickle_case("kwargs-lack-z-dim", {k: v for k, v in with_kwargs().items() if k != "z_dim"}, r"lack 'z_dim'"),
    _pickle_case("conv-clamp-nan", with_synthesis(conv_clamp=float("nan")), r"conv_clamp is nan, not a finite"),
    BadInput("kwargs-hold-a-command",
             lambda t: _generate_argv(t, write_generator_pickle(
                 t / "cmd.pkl", with_kwargs(mapping_kwargs={"num_layers": 2, "hook": MarkerPayload(t / "marker")}))),
             r"mapping_kwargs\.hook holds a", good=_good_generation),
    _pickle_case("sub-network-contains-itself", None, r"sub-network 'loop' contains itself", mutate=_self_child),
    _pickle_case("generator-of-unknown-architecture", None, r"unknown generator class 'Generator'",
                 mutate=_no_synthesis),
    _pickle_case("kwargs-not-a-dict", None, r"kwargs of 'Generator' are a list, not a dict", mutate=_kwargs_list),
    _pickle_case("probe-with-cyclic-kwargs", _cyclic_kwargs(), r"cyclic reference", command="probe"),
    _pickle_case("heatmap-with-absurd-resolution", with_kwargs(img_resolution=2**20), _RESOLUTION,
                 command="heatmap"),
]


@table(GENERATOR_CASES)
def test_crafted_generator_pickles(case, tmp_path):
    check_bad_input(case, tmp_path)


# ---------------------------------------------------------------- resampling checkpoints (run API)


def _resampling_run(outdir: Path, messages: list[str] | None = None):
    from fidlens.studies.resampling.modes import Mode
    from fidlens.studies.resampling.run import FeatureBank, ResamplingRun, ResamplingSettings, RunInputs

    rng = np.random.default_rng(5)
    reals = FeatureBank(pool3=rng.normal(size=(120, 6)))
    candidates = FeatureBank(pool3=np.concatenate([rng.normal(size=(120, 6)), rng.normal(size=(120, 6)) * 2 + 2]))
    settings = ResamplingSettings(iterations=20, lr=10.0, eval_every=10, eval_samples=200, eval_repeats=1, seed=1,
                                  chunk_size=64, kid_subsets=3, kid_subset_size=50)
    log = messages.append if messages is not None else (lambda m: None)
    return ResamplingRun(RunInputs(Mode("pre_logits"), reals, candidates), settings, outdir, progress=False, log=log)


def _plain_rows(rows: list[dict]) -> list[dict]:
    return [{k: "nan" if v != v else v for k, v in r.items() if k not in ("elapsed_s", "peak_memory_mb")} for r in rows]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    run = _resampling_run(tmp_path_factory.mktemp("clean") / "run")
    run.run()
    return run


def _planted_pt(outdir: Path, marker: Path) -> str:
    torch.save({"fingerprint": "anything", "payload": MarkerPayload(marker)}, outdir / "checkpoint.pt")
    return "ignoring"


def _pickle_named_npz(outdir: Path, marker: Path) -> str:
    import pickle

    (outdir / "checkpoint.npz").write_bytes(pickle.dumps({"payload": MarkerPayload(marker)}))
    return "unreadable"


def _object_arrays_in_npz(outdir: Path, marker: Path) -> str:
    payload = np.empty(1, dtype=object)
    payload[0] = MarkerPayload(marker)
    np.savez(outdir / "checkpoint.npz", header=payload, w=payload)  # object arrays are pickles inside .npy
    return "expected 1-d uint8"


def _huge_declared_weights(outdir: Path, marker: Path) -> str:
    """A genuine header for this run, then a 'w' whose header declares 10**12 float64 (8 TB)."""
    import io
    import zipfile

    good = _resampling_run(outdir.parent / "donor")
    good.run()
    with zipfile.ZipFile(good.checkpoint_path) as archive:
        header = archive.read("header.npy")
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(outdir / "checkpoint.npz", "w") as archive:
        archive.writestr("header.npy", header)
        archive.writestr("w.npy", stream.getvalue() + b"\0" * 64)
    return r"float64(1000000000000,)"


@pytest.mark.parametrize("plant", [_planted_pt, _pickle_named_npz, _object_arrays_in_npz, _huge_declared_weights],
                         ids=["checkpoint-pt-with-reduce-payload", "pickle-named-checkpoint-npz",
                              "object-arrays-in-checkpoint-npz", "weights-declared-8-tb"])
def test_planted_checkpoints_never_run_and_the_run_starts_over(plant, tmp_path, clean_run):
    outdir = tmp_path / "run"
    outdir.mkdir()
    marker = tmp_path / "marker"
    why = plant(outdir, marker)
    messages: list[str] = []
    run = _resampling_run(outdir, messages)
    run.run()
    assert not marker.exists(), "the planted payload ran"
    assert any(why in m and "starting over" in m for m in messages), messages
    assert torch.equal(run.optimizer.w, clean_run.optimizer.w)
    assert _plain_rows(run.rows) == _plain_rows(clean_run.rows)


def test_resume_reads_no_pickle_and_matches_an_uninterrupted_run(tmp_path, clean_run, monkeypatch):
    first = _resampling_run(tmp_path / "run")
    first.settings.iterations = 10
    first.run()
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    messages: list[str] = []
    second = _resampling_run(tmp_path / "run", messages)
    second.run()
    assert any("resumed at iteration 10" in m for m in messages)
    assert torch.equal(second.optimizer.w, clean_run.optimizer.w)
    assert _plain_rows(second.rows) == _plain_rows(clean_run.rows)


# ---------------------------------------------------------------- the sha256 stamp


def _count_hashing(monkeypatch) -> list[str]:
    calls: list[str] = []
    original = assets.file_sha256

    def counting(path):
        calls.append(str(path))
        return original(path)

    monkeypatch.setattr(assets, "file_sha256", counting)
    return calls


def test_stamp_spares_rehashing_until_the_file_changes(tmp_path, monkeypatch):
    calls = _count_hashing(monkeypatch)
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    first = assets.stamped_sha256(path)
    assert first == file_sha256(path) and len(calls) == 1 and stamp_path(path).is_file()
    assert assets.stamped_sha256(path) == first and len(calls) == 1  # served from the stamp
    stat = path.stat()
    path.write_bytes(b"b" * 1000)  # same size ...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the old mtime: ctime still moved
    second = assets.stamped_sha256(path)
    assert len(calls) == 2 and second == file_sha256(path) != first
    stamp_path(path).write_text("{not json")
    assert assets.stamped_sha256(path) == second and len(calls) == 3  # a damaged stamp is just ignored


@pytest.mark.slow
def test_default_weights_are_hashed_once_then_verified_from_the_stamp(tmp_path, monkeypatch, default_weights):
    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))
    weights = copy_default_weights(default_weights, tmp_path / "home")
    calls = _count_hashing(monkeypatch)
    assert load_inception(weights).weights_sha256 == DEFAULT_INCEPTION.sha256
    assert load_inception(weights).weights_sha256 == DEFAULT_INCEPTION.sha256
    assert len(calls) == 1
    scale_first_conv_in_place(weights, 1.05, keep_mtime=True)  # the FID-shifting edit of the issue
    with pytest.raises(AssetError, match=f"expected {DEFAULT_INCEPTION.sha256}; run `fidlens fetch-inception`"):
        load_inception(weights)
    assert len(calls) == 2


@pytest.mark.slow
def test_custom_weights_record_their_sha256_in_the_statistics(tmp_path, default_weights):
    custom = scaled_copy(default_weights, tmp_path / "my_inception.pt")  # the user's own: fine under their name
    result = run_cli(_stats_argv(tmp_path, custom))
    assert result.code == 0, result.stderr
    meta = Statistics.load(tmp_path / "out.npz").meta
    assert meta["detector"] == "my_inception.pt"
    assert meta["detector_sha256"] == file_sha256(custom) != DEFAULT_INCEPTION.sha256
    assert stamp_path(custom).is_file()


def test_kwargs_checks_leave_real_configurations_alone():
    from fidlens.generators.nvidia_pickle import check_init_kwargs

    ffhq = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3, mapping_kwargs={"num_layers": 8},
                synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256})
    check_init_kwargs(copy.deepcopy(ffhq), "stylegan2")
    sg3 = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3, mapping_kwargs={"num_layers": 2},
               channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True, magnitude_ema_beta=0.999)
    check_init_kwargs(sg3, "stylegan3")
