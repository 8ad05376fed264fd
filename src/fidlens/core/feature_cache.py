"""Feature-cache entries that carry their own proof of integrity.

A cache that serves a damaged entry gives a silently wrong FID, so every entry holds a sha256 over
its cache key, its metadata and each array's name, dtype, shape and bytes.  On read, an entry is
used only if it parses, holds the expected arrays (headers checked before any array is
allocated), was written for the key asked for, matches its checksum, and has one finite feature
row per image.  Anything else (a truncated file, an entry from an older fidlens without a
checksum, arrays overwritten in place, NaN features, malformed metadata) is moved to the cache's
``quarantine/`` folder with a one-line `FeatureCacheWarning` naming the file and the reason, and
the caller recomputes.

Entries are written atomically (temp file + rename), and read through one open file handle, so
concurrent readers and writers never see or produce a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import StatisticsError

__all__ = ["QUARANTINE_DIR", "DamagedEntry", "FeatureCacheWarning", "entry_checksum", "read_entry", "read_verified", "write_entry"]

QUARANTINE_DIR = "quarantine"
_TAG = b"fidlens-feature-cache-entry-v1\n"
_REQUIRED = ("pool3", "meta", "cache_key", "checksum")


class FeatureCacheWarning(UserWarning):
    """A feature-cache entry failed its checks and was set aside; the features are recomputed."""


class DamagedEntry(Exception):
    """Why a cache entry cannot be trusted (internal: turned into a warning and a recompute)."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def entry_checksum(key: str, meta_json: str, arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the key, the metadata text and each array's name, dtype, shape and bytes."""
    h = hashlib.sha256(_TAG)
    for text in (key, meta_json):
        raw = text.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little") + raw)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        header = json.dumps([name, array.dtype.str, list(array.shape)]).encode()
        h.update(len(header).to_bytes(8, "little") + header)
        h.update(array.reshape(-1).view(np.uint8).data if array.size else b"")
    return h.hexdigest()


def write_entry(path: str | os.PathLike, key: str, pool3: np.ndarray, meta: dict[str, Any], logits: np.ndarray | None) -> None:
    """Write one entry atomically; refuses features that are not finite (they would be refused on read)."""
    arrays = {"pool3": np.ascontiguousarray(pool3, dtype=np.float32)}
    if logits is not None:
        arrays["logits"] = np.ascontiguousarray(logits, dtype=np.float32)
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise StatisticsError(f"not caching features with non-finite values in '{name}'")
    meta_json = json.dumps(meta, sort_keys=True)
    checksum = entry_checksum(key, meta_json, arrays)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays, meta=np.array(meta_json), cache_key=np.array(key), checksum=np.array(checksum))


def _npy_header(fp) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fp)
    raise DamagedEntry(f"an array has an unsupported .npy version {version}")


def _read_array(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """One array of the entry, its header checked against the stored size before allocating."""
    info = zf.getinfo(f"{name}.npy")
    with zf.open(info) as fp:
        shape, _, dtype = _npy_header(fp)
        data_bytes = info.file_size - fp.tell()
    if dtype.hasobject:
        raise DamagedEntry(f"array '{name}' holds Python objects")
    needed = math.prod(shape) * dtype.itemsize
    if needed != data_bytes:
        raise DamagedEntry(f"array '{name}' declares shape {shape} ({needed} bytes) but stores {data_bytes} bytes")
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def _text(array: np.ndarray, name: str) -> str:
    if array.ndim != 0 or array.dtype.kind != "U":
        raise DamagedEntry(f"'{name}' is not a text field")
    return str(array[()])


def read_entry(fh, key: str) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    """Parse and verify an entry from the open binary file `fh`; raises `DamagedEntry` with the reason."""
    try:
        with zipfile.ZipFile(fh) as zf:
            present = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
            if "checksum" not in present:
                raise DamagedEntry("it has no checksum (written by an older fidlens or another tool)")
            missing = [n for n in _REQUIRED if n not in present]
            if missing:
                raise DamagedEntry(f"it lacks the array(s) {', '.join(missing)}")
            arrays = {"pool3": _read_array(zf, "pool3")}
            if "logits" in present:
                arrays["logits"] = _read_array(zf, "logits")
            meta_json = _text(_read_array(zf, "meta"), "meta")
            stored_key = _text(_read_array(zf, "cache_key"), "cache_key")
            stored_checksum = _text(_read_array(zf, "checksum"), "checksum")
    except DamagedEntry:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError, EOFError, MemoryError) as exc:
        raise DamagedEntry(f"it is not a readable .npz ({_one_line(exc) or type(exc).__name__})") from None
    if stored_key != key:
        raise DamagedEntry(f"it was written for cache key {stored_key[:40]!r}, not {key!r}")
    if entry_checksum(key, meta_json, arrays) != stored_checksum:
        raise DamagedEntry("its checksum does not match its contents (modified or damaged)")
    try:
        meta = json.loads(meta_json)
    except ValueError:
        raise DamagedEntry("its metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise DamagedEntry("its metadata is not a JSON object")
    rows = meta.get("num_images")
    for name, array in arrays.items():
        if array.ndim != 2 or array.dtype.kind != "f" or array.shape[1] == 0:
            raise DamagedEntry(f"'{name}' has shape {array.shape} and dtype {array.dtype}, not rows of float features")
        if array.shape[0] != rows:
            raise DamagedEntry(f"'{name}' holds {array.shape[0]} rows for {rows!r} images")
        if not np.isfinite(array).all():
            raise DamagedEntry(f"'{name}' holds non-finite values (NaN or inf)")
    return arrays["pool3"], meta, arrays.get("logits")


def _set_aside(path: Path, seen: os.stat_result) -> str:
    """Move a damaged entry into quarantine/ (or delete it); returns what was done, for the warning."""
    try:
        now = os.stat(path)
    except OSError:
        return "it is gone already"
    if (now.st_ino, now.st_dev) != (seen.st_ino, seen.st_dev):
        return "another run has replaced it already"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    dest = path.parent / QUARANTINE_DIR / f"{path.stem}.{stamp}.{os.getpid()}{path.suffix}"
    try:
        dest.parent.mkdir(exist_ok=True)
        os.replace(path, dest)
        return f"moved it to {dest}"
    except OSError:
        pass
    try:
        path.unlink()
        return "deleted it"
    except OSError as exc:
        return f"could not move or delete it ({_one_line(exc.strerror or exc)})"


def read_verified(path: Path, key: str) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None] | None:
    """The verified entry at `path`, or None (missing, or damaged: set aside with a warning)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - held open across verification and quarantine
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        warnings.warn(f"cannot read feature cache entry {path} ({_one_line(exc.strerror or exc)}); recomputing",
                      FeatureCacheWarning, stacklevel=3)
        return None
    with fh:
        seen = os.fstat(fh.fileno())
        try:
            return read_entry(fh, key)
        except DamagedEntry as exc:
            reason = str(exc)
    action = _set_aside(path, seen)
    warnings.warn(f"feature cache entry {path} is damaged: {reason}; {action}; recomputing the features",
                  FeatureCacheWarning, stacklevel=3)
    return None
