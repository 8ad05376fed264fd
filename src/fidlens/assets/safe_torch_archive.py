"""Read a PyTorch zip archive (TorchScript or ``torch.save``) as tensors, running nothing from it.

``torch.jit.load`` runs code from the file (a TorchScript class's ``__setstate__`` is
TorchScript, and it may call any registered operator), and a plain unpickler calls whatever
globals a file names. Here the archive's ``data.pkl`` goes through :class:`InertUnpickler`:
a short allow-list of data constructors (our own tensor and list rebuilders, ``OrderedDict``)
and every other global becomes an :class:`InertObject` class whose instances only hold the
arguments and state they were given; nothing of theirs is ever called. Storages are read
from the ``data/KEY`` records with the dtype their record names; bounds are checked before
any tensor view is made.

For TorchScript archives, :func:`torchscript_state_dict` names the tensors exactly as
``torch.jit.load(path).state_dict()`` does: parameters and buffers (as listed by the
``__parameters__`` / ``__buffers__`` lines of the archive's class definitions, read as text)
in that order, then submodules, depth first. Cyclic references and absurd nesting are
refused with an :class:`~fidlens.core.errors.AssetError`.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from fidlens.core.errors import AssetError

MAX_PICKLE_BYTES = 256 * 2**20  # data.pkl of a 1 GB model is well under 1 MiB
MAX_CODE_BYTES = 64 * 2**20  # all class definitions together
MAX_DEPTH = 100  # nesting of modules/containers; Inception is 5 deep
MAX_VISITS = 100_000  # objects visited while naming tensors (shared sub-trees count each time; ViT-B-32: ~2 000)
MAX_DIMS = 64

_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


class InertObject:
    """Stands in for an object of any class outside the allow-list: it holds data, runs nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"


def inert_class(module: str, name: str, base: type[InertObject] = InertObject) -> type[InertObject]:
    """A fresh :class:`InertObject` subclass standing in for global ``module.name``.

    A class (not a function) so that both ways a pickle builds objects work: called with
    arguments (REDUCE) and ``cls.__new__`` plus state (NEWOBJ, BUILD).
    """
    return type(name if name.isidentifier() else "Inert", (base,), {"qualname": f"{module}.{name}"})


class _StorageType:
    """What a ``torch.FloatStorage``-style global resolves to: only its dtype is used."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


class _Storage:
    """One ``data/KEY`` record as a flat tensor of its dtype."""

    def __init__(self, flat: torch.Tensor):
        self.flat = flat


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise pickle.UnpicklingError(f"tensor record has a bad {what}: {value!r}")
    return value


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` for data only: checks every bound, keeps no hooks."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor record does not point at a storage")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)) or len(size) != len(stride):
        raise pickle.UnpicklingError("a tensor record has malformed size/stride")
    if len(size) > MAX_DIMS:
        raise pickle.UnpicklingError(f"a tensor record has {len(size)} dimensions")
    offset = _int(offset, "storage offset")
    size = tuple(_int(s, "size") for s in size)
    stride = tuple(_int(s, "stride") for s in stride)
    if all(size):
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.flat.numel():
            raise pickle.UnpicklingError(
                f"a tensor of size {size} at offset {offset} reaches past its storage of {storage.flat.numel()} elements")
    elif offset > storage.flat.numel():
        raise pickle.UnpicklingError("an empty tensor starts past its storage")
    return torch.as_strided(storage.flat, size, stride, offset)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None) -> Any:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter record holds no tensor")
    return data


def _restore_type_tag(value: Any, type_str: Any = None) -> Any:
    return value


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    if args and not isinstance(args[0], (list, tuple, dict)):
        raise pickle.UnpicklingError("OrderedDict built from something other than pairs")
    return collections.OrderedDict(*args[:1])


def _plain_list(values: Any = ()) -> list:
    if not isinstance(values, (list, tuple)):
        raise pickle.UnpicklingError("a TorchScript list record is not a list")
    return list(values)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch.jit._pickle", "build_intlist"): _plain_list,
    ("torch.jit._pickle", "build_doublelist"): _plain_list,
    ("torch.jit._pickle", "build_boollist"): _plain_list,
    ("torch.jit._pickle", "build_tensorlist"): _plain_list,
    ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
}


class InertUnpickler(pickle.Unpickler):
    """Resolves the allow-list and storage types; every other global becomes an inert class.

    ``read_record(key)`` returns the bytes of ``data/KEY`` (or raises); storages are read
    once per key and shared, as in the file.
    """

    def __init__(self, file: Any, read_record: Any):
        super().__init__(file)
        self._read_record = read_record
        self._storages: dict[str, _Storage] = {}
        self._inert: dict[tuple[str, str], type[InertObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        key = (module, name)
        if key not in self._inert:
            self._inert[key] = inert_class(module, name)
        return self._inert[key]

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent record {str(pid)[:60]}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not re.fullmatch(r"\w+", key):
            raise pickle.UnpicklingError(f"malformed storage record {str(pid)[:60]}")
        numel = _int(numel, "storage length")
        if key not in self._storages:
            dtype = storage_type.dtype
            nbytes = numel * dtype.itemsize if storage_type.name != "UntypedStorage" else numel
            data = self._read_record(key, nbytes)
            flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
            self._storages[key] = _Storage(flat)
        return self._storages[key]


class TorchArchive:
    """The unpickled object tree of one archive plus what is needed to name its tensors."""

    def __init__(self, path: Path, root: Any, is_torchscript: bool, members: dict[str, tuple[list[str], list[str]]]):
        self.path, self.root, self.is_torchscript = path, root, is_torchscript
        self.members = members  # class qualname -> (parameter names, buffer names)


def _archive_prefix(archive: zipfile.ZipFile, path: Path) -> str:
    tops = [n[: -len("data.pkl")] for n in archive.namelist() if re.fullmatch(r"[^/]+/data\.pkl", n)]
    if len(tops) != 1:
        raise AssetError(f"{path} is not a PyTorch archive (no single */data.pkl record)")
    return tops[0]


def _read_member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """A member's bytes, never more than ``limit`` (declared sizes may lie)."""
    with archive.open(name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise AssetError(f"{path}: record {name} is larger than {limit:,} bytes; not a weights file fidlens reads")
    return data


_CLASS = re.compile(r"^class (\w+)\(Module\):\n((?:  .*\n?)*)", re.M)
_NAMES = re.compile(r'"([^"\\]*)"')


def _class_members(archive: zipfile.ZipFile, prefix: str, path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Parameter and buffer names per TorchScript class, from the ``code/`` text (never run)."""
    members: dict[str, tuple[list[str], list[str]]] = {}
    budget = MAX_CODE_BYTES
    for info in archive.infolist():
        name = info.filename
        if not (name.startswith(prefix + "code/") and name.endswith(".py")):
            continue
        text = _read_member(archive, name, budget, path).decode("utf-8", errors="replace")
        budget -= len(text)
        module = name[len(prefix + "code/") : -len(".py")].replace("/", ".")
        for match in _CLASS.finditer(text):
            body = match.group(2)
            params = re.search(r"^  __parameters__ = \[(.*)\]$", body, re.M)
            buffers = re.search(r"^  __buffers__ = \[(.*)\]$", body, re.M)
            if params and buffers:
                members[f"{module}.{match.group(1)}"] = (_NAMES.findall(params.group(1)), _NAMES.findall(buffers.group(1)))
    return members


def read_torch_archive(path: str | os.PathLike) -> TorchArchive:
    """Unpickle ``path``'s ``data.pkl`` with :class:`InertUnpickler`; AssetError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"weights file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise AssetError(f"{path} is not a PyTorch weights file (not a zip archive; truncated download?)")
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _archive_prefix(archive, path)
            names = set(archive.namelist())
            if prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() not in (b"little", b""):
                raise AssetError(f"{path} was written on a big-endian machine; fidlens reads little-endian archives only")
            is_torchscript = any(n.startswith(prefix + "code/") for n in names) or prefix + "constants.pkl" in names

            def read_record(key: str, nbytes: int) -> bytes:
                name = f"{prefix}data/{key}"
                if name not in names:
                    raise pickle.UnpicklingError(f"storage record {name} is missing")
                info = archive.getinfo(name)
                if info.compress_type != zipfile.ZIP_STORED:
                    raise pickle.UnpicklingError(f"storage record {name} is compressed (PyTorch stores them as is)")
                if info.file_size != nbytes:
                    raise pickle.UnpicklingError(f"storage record {name} has {info.file_size:,} bytes, "
                                                 f"its tensor record says {nbytes:,}")
                return _read_member(archive, name, nbytes, path)

            pickled = _read_member(archive, prefix + "data.pkl", MAX_PICKLE_BYTES, path)
            root = InertUnpickler(io.BytesIO(pickled), read_record).load()
            members = _class_members(archive, prefix, path) if is_torchscript else {}
    except AssetError:
        raise
    except Exception as exc:  # damaged or crafted archives fail in many ways (RecursionError included)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AssetError(f"cannot read {path} as a PyTorch archive: {detail}") from exc
    return TorchArchive(path, root, is_torchscript, members)


def _named_tensors(archive: TorchArchive) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    on_path: set[int] = set()
    visits = 0

    def visit(node: Any, prefix: str, depth: int) -> None:
        nonlocal visits
        visits += 1
        if visits > MAX_VISITS:
            raise AssetError(f"{archive.path}: more than {MAX_VISITS:,} objects to walk (a crafted archive?)")
        if depth > MAX_DEPTH:
            raise AssetError(f"{archive.path}: objects nested more than {MAX_DEPTH} deep at '{prefix[:80]}'")
        if id(node) in on_path:
            raise AssetError(f"{archive.path}: cyclic reference at '{prefix.rstrip('.')[:80]}'")
        on_path.add(id(node))
        try:
            if isinstance(node, InertObject):
                visit_object(node, prefix, depth)
            elif isinstance(node, dict):
                for key, value in node.items():
                    if isinstance(key, str):
                        visit_child(value, prefix + key, depth)
            elif isinstance(node, (list, tuple)):
                for index, value in enumerate(node):
                    visit_child(value, f"{prefix}{index}", depth)
        finally:
            on_path.discard(id(node))

    def visit_child(value: Any, name: str, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, (InertObject, dict, list, tuple)):
            visit(value, name + ".", depth + 1)

    def visit_object(node: InertObject, prefix: str, depth: int) -> None:
        state = node.state
        if not isinstance(state, dict):  # a custom __getstate__: name its tensors by position
            visit_child(state, prefix.rstrip("."), depth)
            return
        listed = archive.members.get(node.qualname)
        if listed is None:  # no class definition to say which tensors are parameters: take all
            for name, value in state.items():
                if isinstance(name, str):
                    visit_child(value, prefix + name, depth)
            return
        for name in [*listed[0], *listed[1]]:
            if isinstance(state.get(name), torch.Tensor):
                out[prefix + name] = state[name]
        for name, value in state.items():
            if isinstance(name, str) and isinstance(value, InertObject):
                visit(value, f"{prefix}{name}.", depth + 1)

    visit(archive.root, "", 0)
    return out


def torchscript_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a TorchScript archive, named as its ``state_dict()`` would name them."""
    archive = read_torch_archive(path)
    if not archive.is_torchscript:
        raise AssetError(f"{archive.path} is a torch.save archive, not TorchScript")
    try:
        return _named_tensors(archive)
    except RecursionError as exc:  # MAX_DEPTH keeps well inside the default limit; a deep caller stack might not
        raise AssetError(f"{archive.path}: objects nested too deeply to walk") from exc
