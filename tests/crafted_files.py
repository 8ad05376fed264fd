"""Builders for hostile files, made at test time (no binary fixtures): torch archives with planted
code, TorchScript with a ``__setstate__`` that writes a marker, crafted NVIDIA pickles, tampered weights.

Every payload here only creates a marker file, so a test proves "never ran" by its absence.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import os
import pickle
import pickletools
import shutil
import struct
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# ----------------------------------------------------------------------------- payloads


class MarkerPayload:
    """Unpickling this with a plain unpickler creates ``marker`` (via os.system); ours never calls it."""

    def __init__(self, marker: str | os.PathLike):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


_OP_REGISTERED = False


def register_touch_op() -> None:
    """``torch.ops.fidlens_test.touch(path)``: a side effect TorchScript code can call."""
    global _OP_REGISTERED
    if _OP_REGISTERED:
        return

    @torch.library.custom_op("fidlens_test::touch", mutates_args=())
    def touch(path: str) -> torch.Tensor:
        Path(path).write_text("ran")
        return torch.zeros(1)

    _OP_REGISTERED = True


class SetstateModule(nn.Module):
    """A module whose TorchScript ``__setstate__`` writes a marker file when the archive is loaded."""

    def __init__(self, marker: str):
        super().__init__()
        self.weight = nn.Parameter(torch.arange(6.0).reshape(2, 3))
        self.register_buffer("scale", torch.full((3,), 2.0))
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.weight.sum()

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, torch.Tensor, str, bool]:
        return (self.weight, self.scale, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, torch.Tensor, str, bool]) -> None:
        self.weight = state[0]
        self.scale = state[1] + torch.ops.fidlens_test.touch(state[2])  # the result is used: not optimised away
        self.marker = state[2]
        self.training = state[3]


class SetstateOuter(nn.Module):
    def __init__(self, marker: str):
        super().__init__()
        self.inner = SetstateModule(marker)
        self.conv = nn.Conv2d(1, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def write_setstate_torchscript(path: Path, marker: Path) -> SetstateOuter:
    """A real TorchScript archive (torch.jit.save) whose loading by torch.jit.load writes ``marker``."""
    register_touch_op()
    module = SetstateOuter(str(marker))
    torch.jit.script(module).save(str(path))
    return module


# ----------------------------------------------------------------------------- hand-made torch archives


class StorageRef:
    """Pickles as a storage persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel)."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class TensorRecord:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``, any numbers."""

    def __init__(self, storage: StorageRef, offset: int, size: tuple, stride: tuple):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class _ArchivePickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, StorageRef):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def script_class(name: str) -> type:
    """A class that pickles as the TorchScript global ``__torch__.NAME`` (NEWOBJ, then its __dict__)."""
    return type(name, (), {"__module__": "__torch__", "__qualname__": name})


def script_object(cls: type, **state: Any) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


@contextlib.contextmanager
def _torch_namespace(classes: list[type]):
    module = types.ModuleType("__torch__")
    for cls in classes:
        setattr(module, cls.__qualname__, cls)
    saved = sys.modules.get("__torch__")
    sys.modules["__torch__"] = module
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("__torch__", None)
        else:
            sys.modules["__torch__"] = saved


def write_torch_zip(path: Path, root: Any, *, records: dict[str, bytes] | None = None, code: str | None = None,
                    classes: list[type] | None = None, compress_records: bool = False) -> Path:
    """A zip laid out like torch's: ``archive/data.pkl`` (ROOT pickled), ``data/KEY`` records, ``code/``."""
    buffer = _pickled(root, classes or [])
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/byteorder", "little")
        if code is not None:
            archive.writestr("archive/code/__torch__.py", code)
        for key, data in (records or {}).items():
            archive.writestr(f"archive/data/{key}", data,
                             compress_type=zipfile.ZIP_DEFLATED if compress_records else zipfile.ZIP_STORED)
    return path


def _pickled(root: Any, classes: list[type]) -> bytes:
    import io

    out = io.BytesIO()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # deep trees are what some tests are about
    try:
        with _torch_namespace(classes):
            _ArchivePickler(out, protocol=2).dump(root)
    finally:
        sys.setrecursionlimit(limit)
    return out.getvalue()


def module_code(name: str, parameters: list[str], buffers: list[str] = ()) -> str:
    """The ``code/`` text TorchScript writes for a class: only the member lists matter to the reader."""
    quoted = lambda names: "".join(f'"{n}", ' for n in names)
    return (f"class {name}(Module):\n  __parameters__ = [{quoted(parameters)}]\n  __buffers__ = [{quoted(buffers)}]\n"
            f"  training : bool\n")


def floats(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def cyclic_torchscript(path: Path) -> Path:
    node = script_class("Node")
    a = script_object(node, training=True, weight=TensorRecord(StorageRef("0", 2), 0, (2,), (1,)))
    b = script_object(node, training=True, parent=a)
    a.child = b
    return write_torch_zip(path, a, records={"0": floats([1, 2])}, code=module_code("Node", ["weight"]),
                           classes=[node])


def deep_torchscript(path: Path, depth: int = 5000) -> Path:
    node = script_class("Node")
    root = current = script_object(node, training=True)
    for _ in range(depth):
        child = script_object(node, training=True)
        current.child = child
        current = child
    return write_torch_zip(path, root, code=module_code("Node", []), classes=[node])


def wide_dag_torchscript(path: Path, levels: int = 40) -> Path:
    """Each level points twice at the next: 2**levels paths through 'levels' objects (a 'billion laughs')."""
    node = script_class("Node")
    current = script_object(node, training=True, weight=TensorRecord(StorageRef("0", 1), 0, (1,), (1,)))
    for _ in range(levels):
        current = script_object(node, training=True, left=current, right=current)
    return write_torch_zip(path, current, records={"0": floats([1])}, code=module_code("Node", ["weight"]),
                           classes=[node])


def tensor_archive(path: Path, *, numel: int, record: bytes, size: tuple, stride: tuple, offset: int = 0,
                   compress: bool = False) -> Path:
    """A TorchScript-looking archive holding one tensor whose numbers the test chooses."""
    node = script_class("Net")
    root = script_object(node, training=True, weight=TensorRecord(StorageRef("0", numel), offset, size, stride))
    return write_torch_zip(path, root, records={"0": record}, code=module_code("Net", ["weight"]), classes=[node],
                           compress_records=compress)


def planted_torchscript(path: Path, marker: Path) -> Path:
    """A TorchScript-looking archive whose object state holds a global that would run a command."""
    node = script_class("Net")
    root = script_object(node, training=True, hook=MarkerPayload(marker),
                         weight=TensorRecord(StorageRef("0", 2), 0, (2,), (1,)))
    return write_torch_zip(path, root, records={"0": floats([1, 2])}, code=module_code("Net", ["weight"]),
                           classes=[node])


def planted_torch_save(path: Path, marker: Path) -> Path:
    """A torch.save-style archive (no code/) whose data.pkl runs a command when unpickled the ordinary way."""
    return write_torch_zip(path, {"conv.weight": MarkerPayload(marker)})


# ----------------------------------------------------------------------------- tampered Inception weights


def member_data_offset(path: Path, name: str) -> tuple[int, int]:
    """(file offset, size) of a stored zip member's bytes."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def scale_first_conv_in_place(path: Path, factor: float = 1.05, keep_mtime: bool = True) -> None:
    """Multiply the first conv's weights by FACTOR inside the archive: same size, optionally same mtime."""
    stat = path.stat()
    with zipfile.ZipFile(path) as archive:
        name = sorted((n for n in archive.namelist() if "/data/" in n), key=lambda n: int(n.rsplit("/", 1)[1]))[0]
    offset, size = member_data_offset(path, name)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        values = np.frombuffer(handle.read(size), dtype="<f4") * np.float32(factor)
        handle.seek(offset)
        handle.write(values.astype("<f4").tobytes())
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def scaled_copy(source: Path, dest: Path, factor: float = 1.05) -> Path:
    """A well-formed archive (checksums right) equal to SOURCE but with the first conv scaled: 'saved back'."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w") as out:
        first = sorted((n for n in src.namelist() if "/data/" in n), key=lambda n: int(n.rsplit("/", 1)[1]))[0]
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == first:
                data = (np.frombuffer(data, dtype="<f4") * np.float32(factor)).astype("<f4").tobytes()
            out.writestr(info, data)
    return dest


def copy_default_weights(source: Path, home: Path) -> Path:
    """``HOME/weights/default_1.pt`` as a copy of the real file (for FIDLENS_HOME=HOME)."""
    dest = home / "weights" / "default_1.pt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


# ----------------------------------------------------------------------------- crafted NVIDIA pickles

GOOD_KWARGS = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 2},
                   synthesis_kwargs={"channel_base": 256, "channel_max": 16, "conv_clamp": 256,
                                     "architecture": "skip", "num_fp16_res": 4})
_DEEP_PLACEHOLDER = "DEEP_PLACEHOLDER_XYZ"


def tiny_stylegan2(seed: int = 0) -> nn.Module:
    from fidlens.generators.stylegan2 import Generator

    torch.manual_seed(seed)
    return Generator(**GOOD_KWARGS).eval()


def write_generator_pickle(path: Path, kwargs: dict | None = None, *, mutate=None, G: nn.Module | None = None) -> Path:
    """An NVIDIA-layout pickle of a tiny StyleGAN2 whose stored kwargs are KWARGS (possibly bad).

    ``mutate(record)`` may edit the persistent record before it is pickled, and return top-level
    entries to pickle *before* it (a dict pickled first is filled after the record is built, which
    is how a pickle can make a network contain itself).
    """
    from fidlens.generators import nvidia_pickle

    G = G or tiny_stylegan2()
    record = nvidia_pickle._module_record(G, None)
    record.meta["state"]["_init_kwargs"] = nvidia_pickle.EasyDict(copy.deepcopy(GOOD_KWARGS) if kwargs is None
                                                                 else kwargs)
    first = (mutate(record) if mutate is not None else None) or {}
    with nvidia_pickle._stand_in_modules(), open(path, "wb") as handle:
        pickle.dump({**first, "G_ema": record}, handle, protocol=4)
    return path


def write_deep_kwargs_pickle(path: Path, depth: int = 100_000) -> Path:
    """mapping_kwargs holding a list nested DEPTH deep, spliced in as raw opcodes (pickle.dump would recurse)."""
    kwargs = copy.deepcopy(GOOD_KWARGS)
    kwargs["mapping_kwargs"]["deep"] = _DEEP_PLACEHOLDER
    write_generator_pickle(path, kwargs)
    data = path.read_bytes()
    placeholder = b"\x8c" + bytes([len(_DEEP_PLACEHOLDER)]) + _DEEP_PLACEHOLDER.encode()  # SHORT_BINUNICODE
    assert data.count(placeholder) == 1
    data = data.replace(placeholder, b"]" * depth + b"a" * (depth - 1))  # EMPTY_LIST x D, APPEND x D-1
    path.write_bytes(pickletools.optimize(data))  # re-frames protocol 4 around the new opcodes
    return path


def with_kwargs(**changes: Any) -> dict:
    kwargs = copy.deepcopy(GOOD_KWARGS)
    kwargs.update(changes)
    return kwargs


def with_synthesis(**changes: Any) -> dict:
    kwargs = copy.deepcopy(GOOD_KWARGS)
    kwargs["synthesis_kwargs"].update(changes)
    return kwargs
