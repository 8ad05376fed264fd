"""Read ``.npz`` archives defensively: headers first, arrays only when they are plausible.

``np.load`` on a user-supplied file can traceback in a dozen ways (a ``.npy`` renamed to
``.npz``, a truncated archive, a pickled object array) or allocate whatever shape the file
declares. Here every member's shape and dtype are read from its ``.npy`` header (``np.lib.format``)
before any array is loaded, so a file that declares 10^12 floats costs nothing, and every
failure is a one-line `StatisticsError` that names the file. Nothing is ever unpickled.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fidlens.core.errors import StatisticsError

__all__ = ["DEFAULT_MAX_BYTES", "Member", "inspect_npz", "read_members"]

# Largest array fidlens loads from a .npz by default: a float64 covariance up to d ~ 23,000,
# or 4 GiB of features (about 500,000 images of 2048 float32 pool3 features).
DEFAULT_MAX_BYTES = 4 * 2**30

_NPY_MAGIC = b"\x93NUMPY"
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, KeyError, NotImplementedError)


@dataclass(frozen=True)
class Member:
    """One array of an archive as its header declares it (nothing loaded)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    stored_bytes: int  # uncompressed size of the member, header included

    @property
    def nbytes(self) -> int:
        """Bytes the declared array needs (exact Python integer: no overflow for absurd shapes)."""
        count = 1
        for n in self.shape:
            count *= n
        return count * self.dtype.itemsize

    @property
    def holds_objects(self) -> bool:
        """True for pickled Python objects, which fidlens never loads."""
        return self.dtype.hasobject


def _describe(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _open_archive(path: Path, what: str) -> zipfile.ZipFile:
    if not path.is_file():
        if path.is_dir():
            raise StatisticsError(f"{path} is a folder, not a {what} .npz file")
        raise StatisticsError(f"{what} file not found: {path}")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise StatisticsError(f"cannot read {what} file {path}: {_describe(exc)}") from None
    if head == _NPY_MAGIC:
        raise StatisticsError(
            f"{path} is a single .npy array, not a .npz archive; a {what} file holds named arrays "
            "(np.savez(path, mu=..., sigma=...))"
        )
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        kind = "truncated or damaged zip archive" if head.startswith(b"PK") else "not a .npz (zip) archive"
        raise StatisticsError(f"{path} is not a readable {what} file ({kind}: {_describe(exc)})") from None
    except (OSError, ValueError, EOFError) as exc:
        raise StatisticsError(f"{path} is not a readable {what} file ({_describe(exc)})") from None


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return tuple(shape), dtype


def inspect_npz(path: str | os.PathLike, what: str = "statistics") -> dict[str, Member]:
    """Every ``.npy`` member of the archive at PATH, from its header; refuses unreadable files.

    A member whose declared array is larger than the bytes it stores is a truncated or
    forged file and is refused here, before anything is allocated.
    """
    path = Path(path)
    members: dict[str, Member] = {}
    with _open_archive(path, what) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            try:
                shape, dtype = _read_header(archive, info)
            except _READ_ERRORS as exc:
                raise StatisticsError(
                    f"{path} is not a readable {what} file (array '{key}' is damaged: {_describe(exc)})"
                ) from None
            member = Member(key, shape, dtype, info.file_size)
            if not member.holds_objects and member.nbytes > member.stored_bytes:
                raise StatisticsError(
                    f"{path} is not a readable {what} file (array '{key}' declares shape {shape} of {dtype}, "
                    f"{member.nbytes} bytes, but stores only {member.stored_bytes}: truncated or forged)"
                )
            members[key] = member
    if not members:
        raise StatisticsError(f"{path} holds no arrays; is it a {what} .npz file?")
    return members


def read_members(
    path: str | os.PathLike,
    members: Iterable[Member],
    what: str = "statistics",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, np.ndarray]:
    """Load the given members (from `inspect_npz`) without pickles and within MAX_BYTES each."""
    path = Path(path)
    wanted = list(members)
    for member in wanted:
        if member.holds_objects:
            raise StatisticsError(
                f"{path}: array '{member.name}' holds pickled Python objects, which fidlens never loads"
            )
        if member.nbytes > max_bytes:
            raise StatisticsError(
                f"{path}: array '{member.name}' declares shape {member.shape} ({member.nbytes / 2**30:.1f} GiB), "
                f"more than the {max_bytes / 2**30:.0f} GiB fidlens loads"
            )
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in wanted:
                with archive.open(member.name + ".npy") as handle:
                    arrays[member.name] = np.lib.format.read_array(handle, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise StatisticsError(f"{path} is not a readable {what} file ({_describe(exc)})") from None
    return arrays
