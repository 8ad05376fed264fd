"""Read NVIDIA's StyleGAN2(-ADA) / StyleGAN3 pickles without running the code inside them.

Each network in those pickles is a "persistent class" object that reduces to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` holds the
defining module's *source code*, the class name and the object's ``__dict__``. Loading
them the ordinary way executes that source. Here a restricted unpickler turns every such
object into an inert :class:`PersistentRecord`, refuses to resolve any global outside a
short list of data constructors, and our own generator is rebuilt from the class name,
``_init_kwargs`` and the parameter/buffer tensors. No NVIDIA module is ever imported.

A crafted file gets a one-line :class:`GeneratorLoadError`, never a traceback: kwargs must be
plain data (numbers, strings, lists, dicts; no cycles, at most ``MAX_KWARGS_DEPTH`` deep),
sizes are bounded (``MAX_RESOLUTION``, ``_COUNT_LIMITS``), and the generator is first built
on PyTorch's ``meta`` device so that its tensor shapes are compared with the file's before
any memory is allocated.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import sys
import types
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fidlens.core.errors import FidlensError
from fidlens.assets.safe_torch_archive import InertObject, inert_class

try:  # numpy >= 2 moved the pickling helpers; the pickles name either module
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray

PERSISTENCE_MODULE = "torch_utils.persistence"
RECONSTRUCT_NAME = "_reconstruct_persistent_obj"
MAX_KWARGS_DEPTH = 16  # NVIDIA's kwargs are 2 levels deep
MAX_MODULE_DEPTH = 64  # sub-network nesting; a StyleGAN3 generator is 3 deep
MAX_RECORDS = 100_000  # sub-networks visited (shared ones count each time)
MAX_RESOLUTION = 4096  # the released networks stop at 1024


class GeneratorLoadError(FidlensError):
    """A generator pickle that cannot be turned into one of our generators."""


class PersistentRecord:
    """An NVIDIA persistent object, kept as data: class name, state and (never executed) source."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or not isinstance(meta.get("class_name"), str) or "state" not in meta:
            raise GeneratorLoadError("a persistent object in the pickle has no class name or state")
        self.class_name: str = meta["class_name"]
        self.version = meta.get("version")
        self.module_src: str = meta.get("module_src", "")
        self.state = meta["state"] if isinstance(meta["state"], dict) else {}

    @property
    def init_kwargs(self) -> dict:
        kwargs = _plain(self.state.get("_init_kwargs") or {}, "kwargs")
        if not isinstance(kwargs, dict):
            raise GeneratorLoadError(f"the pickle's kwargs of '{self.class_name}' are a {type(kwargs).__name__}, not a dict")
        return kwargs

    def _group(self, name: str) -> dict:
        group = self.state.get(name) or {}
        if not isinstance(group, dict):
            raise GeneratorLoadError(f"'{name}' of a '{self.class_name}' in the pickle is not a dict")
        return group

    def children(self) -> dict[str, Any]:
        return dict(self._group("_modules"))

    def walk(self, prefix: str = "") -> Iterator[tuple[str, PersistentRecord]]:
        """This record and every sub-network below it; cycles and absurd nesting are errors."""
        budget = [MAX_RECORDS]

        def visit(record: PersistentRecord, prefix: str, on_path: set[int]) -> Iterator[tuple[str, PersistentRecord]]:
            budget[0] -= 1
            if budget[0] < 0:
                raise GeneratorLoadError(f"the pickle has more than {MAX_RECORDS:,} sub-networks")
            if len(on_path) > MAX_MODULE_DEPTH:
                raise GeneratorLoadError(f"the pickle's sub-networks are nested more than {MAX_MODULE_DEPTH} deep")
            yield prefix, record
            on_path.add(id(record))
            for name, child in record.children().items():
                if isinstance(child, PersistentRecord):
                    if id(child) in on_path:
                        raise GeneratorLoadError(f"the pickle's sub-network '{prefix}{name}' contains itself "
                                                 "(a cyclic reference)")
                    yield from visit(child, f"{prefix}{name}.", on_path)
            on_path.discard(id(record))

        yield from visit(self, prefix, set())

    def tensors(self) -> dict[str, torch.Tensor]:
        """All parameters and buffers below this object, keyed like ``state_dict()``."""
        flat: dict[str, torch.Tensor] = {}
        for prefix, record in self.walk():
            for group in ("_parameters", "_buffers"):
                for name, value in record._group(group).items():
                    if value is None:
                        continue
                    if not isinstance(value, torch.Tensor):
                        raise GeneratorLoadError(f"{prefix}{name} in the pickle is not a tensor")
                    flat[prefix + name] = value.detach()
        return flat

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


# Any object of a class we do not resolve: holds its arguments and state, runs nothing (shared
# with the TorchScript reader, `fidlens.assets.safe_torch_archive`).
OpaqueObject = InertObject


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _load_storage_from_bytes(data: bytes) -> Any:
    """torch's storage reduction, loaded with the weights-only unpickler."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _reconstruct_record(meta: dict) -> PersistentRecord:
    return PersistentRecord(meta)


_ALLOWED: dict[tuple[str, str], Any] = {
    (PERSISTENCE_MODULE, RECONSTRUCT_NAME): _reconstruct_record,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _np_multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _np_multiarray.scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only data constructors; everything else becomes an inert stand-in."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        # Never import: D, augment_pipe and other parts we do not need may hold anything.
        return inert_class(module, name)


def read_pickle(path: str | os.PathLike) -> dict:
    """The top-level dict of a network pickle, with networks as :class:`PersistentRecord`."""
    path = Path(path)
    if not path.is_file():
        raise GeneratorLoadError(f"generator pickle not found: {path}")
    if zipfile.is_zipfile(path):
        raise GeneratorLoadError(f"{path} is a zip archive (a torch.save checkpoint?), not an NVIDIA network pickle")
    try:
        with open(path, "rb") as handle:
            data = RestrictedUnpickler(handle).load()
    except GeneratorLoadError:
        raise
    except Exception as exc:  # a damaged or crafted pickle fails in many ways (RecursionError, MemoryError, ...)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GeneratorLoadError(f"{path} is not a readable network pickle (truncated or not a pickle): {detail}") from exc
    if not isinstance(data, dict):
        raise GeneratorLoadError(f"{path} holds a {type(data).__name__}, not a dict of networks")
    return data


def _plain(value: Any, where: str, depth: int = 0, on_path: set[int] | None = None) -> Any:
    """kwargs as plain Python (EasyDicts to dicts, numpy scalars to numbers); anything else is refused."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 4096:
        value = value.tolist()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GeneratorLoadError(f"the pickle's {where} is {value}, not a finite number")
        return value
    if not isinstance(value, (dict, list, tuple)):
        raise GeneratorLoadError(f"the pickle's {where} holds a {type(value).__name__}; generator settings are "
                                 "numbers, strings, lists and dicts")
    on_path = set() if on_path is None else on_path
    if id(value) in on_path:
        raise GeneratorLoadError(f"the pickle's {where} contains itself (a cyclic reference)")
    if depth >= MAX_KWARGS_DEPTH:
        raise GeneratorLoadError(f"the pickle's {where} is nested more than {MAX_KWARGS_DEPTH} levels deep")
    on_path.add(id(value))
    if isinstance(value, dict):
        out: Any = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise GeneratorLoadError(f"the pickle's {where} has a key that is not a string: {str(key)[:40]!r}")
            out[key] = _plain(item, f"{where}.{key}", depth + 1, on_path)
    else:
        items = [_plain(item, f"{where}[{i}]", depth + 1, on_path) for i, item in enumerate(value)]
        out = tuple(items) if isinstance(value, tuple) else items
    on_path.discard(id(value))
    return out


# Sizes a real generator stays far below; a crafted file must not make us allocate or loop on more.
_DIM_LIMITS = {"z_dim": (1, 8192), "c_dim": (0, 100_000), "w_dim": (1, 8192), "img_channels": (1, 4)}
_COUNT_LIMITS = {"num_layers": 64, "num_critical": 64, "num_fp16_res": 16, "channel_base": 2**22,
                 "channel_max": 16384, "conv_kernel": 15, "filter_size": 64, "margin_size": 1024,
                 "embed_features": 8192, "layer_features": 8192}
_ARCHITECTURES = ("orig", "skip", "resnet")


def _check_int(value: Any, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GeneratorLoadError(f"{name} in the pickle's kwargs is {str(value)[:40]!r}, not an integer")
    if not low <= value <= high:
        raise GeneratorLoadError(f"{name}={value} in the pickle's kwargs is outside {low}..{high}")


def check_init_kwargs(kwargs: dict, family: str) -> None:
    """Refuse kwargs no released generator has, before anything is built from them."""
    for name, (low, high) in _DIM_LIMITS.items():
        if name not in kwargs:
            raise GeneratorLoadError(f"the pickle's kwargs lack '{name}'")
        _check_int(kwargs[name], name, low, high)
    if "img_resolution" not in kwargs:
        raise GeneratorLoadError("the pickle's kwargs lack 'img_resolution'")
    resolution = kwargs["img_resolution"]
    _check_int(resolution, "img_resolution", -(2**63), 2**63)
    if not 4 <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1):
        raise GeneratorLoadError(f"img_resolution={resolution} in the pickle: fidlens reads generators whose "
                                 f"resolution is a power of two from 4 to {MAX_RESOLUTION}")
    groups = [kwargs]
    for name in ("mapping_kwargs", "synthesis_kwargs"):
        group = kwargs.get(name)
        if group is not None and not isinstance(group, dict):
            raise GeneratorLoadError(f"{name} in the pickle is a {type(group).__name__}, not a dict")
        groups.append(group or {})
    for group in groups:
        for name, high in _COUNT_LIMITS.items():
            if group.get(name) is not None:
                _check_int(group[name], name, 0, high)
        architecture = group.get("architecture")
        if family == "stylegan2" and architecture is not None and architecture not in _ARCHITECTURES:
            raise GeneratorLoadError(f"unknown StyleGAN2 architecture {str(architecture)[:40]!r} in the pickle "
                                     f"(expected one of {', '.join(_ARCHITECTURES)})")


def _family(record: PersistentRecord) -> str:
    names = {r.class_name for _, r in record.walk()}
    if "SynthesisInput" in names:
        return "stylegan3"
    if "SynthesisBlock" in names:
        return "stylegan2"
    raise GeneratorLoadError(
        f"unknown generator class '{record.class_name}' (sub-networks: {sorted(names)[:6]}); "
        "fidlens reads StyleGAN2, StyleGAN2-ADA and StyleGAN3 generators"
    )


def build_generator(record: PersistentRecord) -> nn.Module:
    """Our generator for an NVIDIA ``Generator`` record, with every tensor checked and copied."""
    if record.class_name != "Generator":
        raise GeneratorLoadError(f"expected a 'Generator', found class '{record.class_name}'")
    family = _family(record)
    if family == "stylegan3":
        from fidlens.generators.stylegan3 import Generator
    else:
        from fidlens.generators.stylegan2 import Generator
    kwargs = record.init_kwargs
    check_init_kwargs(kwargs, family)
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated until they match the file's tensors
            skeleton = Generator(**kwargs)
    except GeneratorLoadError:
        raise
    except Exception as exc:  # the constructors validate with TypeError, ValueError, ZeroDivisionError, ...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GeneratorLoadError(f"cannot build a {family} generator from the pickle's kwargs: {detail}") from exc
    tensors = record.tensors()
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise GeneratorLoadError(f"the pickle lacks {len(missing)} tensor(s) the {family} generator needs, e.g. {missing[0]}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise GeneratorLoadError(f"the pickle has tensor(s) our {family} generator does not know, e.g. {unexpected[0]}")
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise GeneratorLoadError(f"{key}: shape {tuple(value.shape)} in the pickle, {tuple(expected[key].shape)} expected")
    model = Generator(**kwargs)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, strict=True)
    return model.eval().requires_grad_(False)


def load_nvidia_generator(path: str | os.PathLike, which: str = "G_ema") -> nn.Module:
    """Our generator rebuilt from ``which`` (``G_ema`` by default, ``G`` on request) of a pickle."""
    data = read_pickle(path)
    if which not in data:
        raise GeneratorLoadError(f"{path} has no '{which}' network; it holds {sorted(map(str, data))}")
    record = data[which]
    if not isinstance(record, PersistentRecord):
        raise GeneratorLoadError(f"'{which}' in {path} is not a persistent network object")
    model = build_generator(record)
    model.label = f"{model.kind} {which} from {Path(path).name}"
    return model


# ----------------------------------------------------------------------------- writing (tests, tools)


class _Persistent:
    """Pickles like NVIDIA's persistent objects: a reduce to the reconstruct function and ``meta``."""

    def __init__(self, meta: dict):
        self.meta = meta

    def __reduce__(self):
        return (_reconstruct_stand_in, (self.meta,))


def _reconstruct_stand_in(meta: dict) -> Any:  # pragma: no cover - only referenced by name
    raise RuntimeError("stand-in; never called")


_STAND_IN_SOURCE = "# written by fidlens for tests: not NVIDIA code, never executed\n"


def _module_record(module: nn.Module, init_kwargs: dict | None) -> _Persistent:
    state: dict[str, Any] = {
        "training": False,
        "_parameters": collections.OrderedDict(
            (k, None if v is None else nn.Parameter(v.detach().clone(), requires_grad=False))
            for k, v in module._parameters.items()
        ),
        "_buffers": collections.OrderedDict(
            (k, None if v is None else v.detach().clone()) for k, v in module._buffers.items()
        ),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": collections.OrderedDict(),
        "_forward_hooks": collections.OrderedDict(),
        "_forward_pre_hooks": collections.OrderedDict(),
        "_state_dict_hooks": collections.OrderedDict(),
        "_load_state_dict_pre_hooks": collections.OrderedDict(),
        "_modules": collections.OrderedDict(
            (k, _module_record(v, None)) for k, v in module._modules.items() if v is not None
        ),
        "_init_args": (),
        "_init_kwargs": EasyDict(init_kwargs or {}),
    }
    for key, value in vars(module).items():
        if not key.startswith("_") and isinstance(value, (int, float, str, bool, list, tuple)):
            state[key] = value
    meta = {
        "type": "class",
        "version": 6,
        "module_src": _STAND_IN_SOURCE,
        "class_name": type(module).__name__,
        "state": state,
    }
    return _Persistent(meta)


@contextmanager
def _stand_in_modules() -> Iterator[None]:
    """Make ``torch_utils.persistence`` and ``dnnlib.util`` names resolvable while pickling only."""
    names = ("torch_utils", PERSISTENCE_MODULE, "dnnlib", "dnnlib.util")
    saved = {n: sys.modules.get(n) for n in names}
    persistence = types.ModuleType(PERSISTENCE_MODULE)
    util = types.ModuleType("dnnlib.util")
    _reconstruct_stand_in.__module__ = PERSISTENCE_MODULE
    _reconstruct_stand_in.__qualname__ = RECONSTRUCT_NAME
    setattr(persistence, RECONSTRUCT_NAME, _reconstruct_stand_in)
    original_easydict = (EasyDict.__module__, EasyDict.__qualname__)
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), PERSISTENCE_MODULE: persistence,
                        "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util})
    try:
        yield
    finally:
        EasyDict.__module__, EasyDict.__qualname__ = original_easydict
        _reconstruct_stand_in.__module__ = __name__
        _reconstruct_stand_in.__qualname__ = "_reconstruct_stand_in"
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def save_nvidia_pickle(path: str | os.PathLike, networks: dict[str, tuple[nn.Module, dict]], extra: dict | None = None) -> None:
    """Write ``{name: (module, init_kwargs)}`` in the layout of NVIDIA's network pickles.

    Used by the tests to build tiny generators of each kind; the file has the same structure
    a real ``ffhq.pkl`` has (persistent objects with module source, class name and state).
    """
    with _stand_in_modules():
        payload: dict[str, Any] = {name: _module_record(m, kw) for name, (m, kw) in networks.items()}
        payload.update(extra or {})
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
