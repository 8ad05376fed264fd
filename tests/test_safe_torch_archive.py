"""Torch archives read as tensors only: same tensors as torch's own loaders, nothing from the file run."""

from __future__ import annotations

import pytest
import torch
from crafted_files import (
    cyclic_torchscript,
    planted_torch_save,
    planted_torchscript,
    write_setstate_torchscript,
)

from fidlens.core.errors import AssetError
from fidlens.assets.safe_torch_archive import InertObject, read_torch_archive, torchscript_state_dict


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)  # names and their order
    for key in b:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].stride() == b[key].stride(), key
        assert torch.equal(a[key], b[key]), key


def test_default_weights_read_exactly_as_torch_jit_state_dict(default_weights):
    """The reference is computed now, with torch.jit.load (which runs the archive's code: fine for the pinned file)."""
    reference = torch.jit.load(str(default_weights), map_location="cpu").state_dict()
    ours = torchscript_state_dict(default_weights)
    assert len(ours) == 376
    _same(ours, dict(reference))


def test_torch_save_archives_read_like_weights_only_load(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "dense": base,
        "view": base[1:, 2:],  # shares the storage at an offset, non-contiguous
        "transposed": base.t(),
        "half": torch.linspace(-1, 1, 7, dtype=torch.float16),
        "double": torch.tensor([1e-300, 3.5], dtype=torch.float64),
        "long": torch.tensor([2**40, -3]),
        "flags": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.ones(2)),
    }
    torch.save(state, tmp_path / "state.pt")
    reference = torch.load(tmp_path / "state.pt", weights_only=True)
    ours = read_torch_archive(tmp_path / "state.pt")
    assert not ours.is_torchscript
    _same(ours.root, reference)


def test_setstate_code_in_torchscript_never_runs(tmp_path):
    marker = tmp_path / "marker"
    module = write_setstate_torchscript(tmp_path / "setstate.pt", marker)
    tensors = torchscript_state_dict(tmp_path / "setstate.pt")
    assert not marker.exists()
    assert torch.equal(tensors["conv.weight"], module.conv.weight.detach())
    # __getstate__ returned (weight, scale, marker, training): its tensors are named by position.
    assert torch.equal(tensors["inner.0"], module.inner.weight.detach())
    assert torch.equal(tensors["inner.1"], module.inner.scale)
    torch.jit.load(str(tmp_path / "setstate.pt"))  # the danger is real: torch's loader runs it
    assert marker.read_text() == "ran"


def test_planted_globals_are_inert(tmp_path):
    marker = tmp_path / "marker"
    archive = read_torch_archive(planted_torch_save(tmp_path / "planted.pt", marker))
    assert isinstance(archive.root["conv.weight"], InertObject)
    assert archive.root["conv.weight"].qualname in ("posix.system", "nt.system")
    tensors = torchscript_state_dict(planted_torchscript(tmp_path / "planted_ts.pt", marker))
    assert list(tensors) == ["weight"] and tensors["weight"].tolist() == [1.0, 2.0]
    assert not marker.exists()


def test_cycles_are_refused_in_one_line(tmp_path):
    with pytest.raises(AssetError, match="cyclic reference") as info:
        torchscript_state_dict(cyclic_torchscript(tmp_path / "cyclic.pt"))
    assert "\n" not in str(info.value)
