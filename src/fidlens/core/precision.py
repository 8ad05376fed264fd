"""Full float32 precision on GPUs for the duration of a fidlens computation, then the caller's settings back.

Why: on Ampere and newer GPUs PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa)
by default, and ``cudnn.benchmark`` may pick a different, non-deterministic algorithm per
run. Either moves Inception features (and generator pixels) far beyond the 1e-4 relative
FID agreement fidlens promises. `exact_math` switches both off, and TF32 matmuls too,
only while fidlens runs the detector or a generator, and restores what the caller had on
exit (also when an exception leaves the block), so importing fidlens never changes a
program's global settings.

Statistics, the Fréchet distance, the heatmap gradients and the resampling objective run
in float64, where TF32 never applies.

Opt-in for speed: ``FIDLENS_ALLOW_TF32=1`` allows TF32 and ``cudnn.benchmark``; the setting
used is recorded under ``gpu_precision`` in feature and statistics metadata.

On a CPU none of these flags change any number; they are set all the same, so that the CPU
tests can check the scope is applied where CUDA would use it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fidlens.core.errors import FidlensError

ENV_ALLOW_TF32 = "FIDLENS_ALLOW_TF32"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def tf32_allowed_by_env() -> bool:
    """Whether ``FIDLENS_ALLOW_TF32`` opts in to TF32; a value that is not a yes/no is refused in one line."""
    raw = os.environ.get(ENV_ALLOW_TF32, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise FidlensError(f"{ENV_ALLOW_TF32}='{raw[:40]}' is not understood: use 1 (allow TF32, faster) or 0 (exact, default)")


def _torch() -> Any:
    """torch, imported on first use: statistics files and tables import this module and never need it."""
    import torch

    return torch


# PyTorch >= 2.9 keeps TF32 choices per backend and operator ("fp32_precision": "ieee" = full
# float32, "tf32", "bf16", "none" = inherit); its legacy getters raise once the two APIs are
# mixed, so fidlens reads and writes only the new one where it exists.
@functools.cache
def _new_api() -> bool:
    torch = _torch()
    return hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision")


_LEAVES = ("cuda.matmul", "cudnn.conv", "cudnn.rnn", "mkldnn.matmul", "mkldnn.conv")


def _leaf(name: str) -> Any:
    obj: Any = _torch().backends
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _snapshot() -> dict[str, Any]:
    torch = _torch()
    state: dict[str, Any] = {
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
    }
    if _new_api():
        state.update({name: _leaf(name).fp32_precision for name in _LEAVES})
    else:  # pragma: no cover - PyTorch before 2.9
        state.update(matmul_tf32=torch.backends.cuda.matmul.allow_tf32, cudnn_tf32=torch.backends.cudnn.allow_tf32,
                     matmul_precision=torch.get_float32_matmul_precision())
    return state


def _apply(state: dict[str, Any]) -> None:
    torch = _torch()
    if _new_api():
        for name in _LEAVES:
            _leaf(name).fp32_precision = state[name]
    else:  # pragma: no cover - PyTorch before 2.9
        torch.set_float32_matmul_precision(state["matmul_precision"])  # also sets matmul.allow_tf32: first
        torch.backends.cuda.matmul.allow_tf32 = state["matmul_tf32"]
        torch.backends.cudnn.allow_tf32 = state["cudnn_tf32"]
    torch.backends.cudnn.benchmark = state["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = state["cudnn_deterministic"]


def _wanted(allow_tf32: bool) -> dict[str, Any]:
    state: dict[str, Any] = {"cudnn_benchmark": allow_tf32, "cudnn_deterministic": not allow_tf32}
    if _new_api():
        gpu = "tf32" if allow_tf32 else "ieee"
        state.update({name: gpu if name.startswith("cu") else "ieee" for name in _LEAVES})  # CPU: never bf16
    else:  # pragma: no cover - PyTorch before 2.9
        state.update(matmul_tf32=allow_tf32, cudnn_tf32=allow_tf32, matmul_precision="high" if allow_tf32 else "highest")
    return state


@contextmanager
def exact_math(allow_tf32: bool | None = None) -> Iterator[dict[str, Any]]:
    """Run the block with TF32 off, cuDNN deterministic and no autotuning; restore the caller's flags after.

    ``allow_tf32=None`` reads ``FIDLENS_ALLOW_TF32`` (default: exact). Usable as a decorator;
    nesting is safe (each level restores what it found). Yields `describe()` of the setting.
    """
    allow = tf32_allowed_by_env() if allow_tf32 is None else bool(allow_tf32)
    before = _snapshot()
    try:
        _apply(_wanted(allow))
        yield describe()
    finally:
        _apply(before)


def describe(state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The active GPU precision setting (or that of ``state``), as recorded in metadata."""
    s = _snapshot() if state is None else state
    if _new_api():
        tf32 = any(s[name] == "tf32" for name in ("cuda.matmul", "cudnn.conv"))
        precision = {name: str(s[name]) for name in _LEAVES}
    else:  # pragma: no cover - PyTorch before 2.9
        tf32 = bool(s["matmul_tf32"] or s["cudnn_tf32"])
        precision = {"float32_matmul": str(s["matmul_precision"])}
    return {"tf32": tf32, "cudnn_benchmark": bool(s["cudnn_benchmark"]),
            "cudnn_deterministic": bool(s["cudnn_deterministic"]), "fp32_precision": precision}


def configured() -> dict[str, Any]:
    """The setting `exact_math()` applies under the current environment: what metadata records."""
    return describe(_wanted(tf32_allowed_by_env()))
