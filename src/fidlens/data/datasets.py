"""Image sources for FID: a folder of images or a StyleGAN dataset ZIP, read as uint8 RGB arrays.

`open_image_source(path)` returns an `ImageSource`, a sequence of ``(H, W, 3)`` uint8 arrays that
can be handed straight to a ``torch.utils.data.DataLoader`` (it pickles cleanly; a ZIP source
opens its archive lazily in each process).

Conventions (shared by every reader in fidlens):

* Images are listed in sorted order of their relative POSIX name (plain string sort).  Folders are
  searched recursively for the extensions in `IMAGE_EXTENSIONS` (case-insensitive).  Hidden
  files and folders (any name component starting with ``.``) and macOS ``__MACOSX/`` resource
  forks inside ZIPs are skipped.
* Greyscale (``L`` and 1-bit ``1``) is repeated to three identical channels, silently.  ``RGB`` is
  passed through.  Every other mode is converted to RGB with an `ImageModeWarning`, issued once per
  (source, mode) rather than once per image:

  - 16-bit greyscale (``I;16*``, and ``I``, which Pillow uses for 16-bit PGM) is clipped to
    [0, 65535] and scaled to 8 bits by ``round(v * 255 / 65535)``, then repeated to 3 channels.
    (Pillow's own ``convert`` would clip at 255 and turn most pixels white.)
  - Anything else (RGBA, LA, P, CMYK, F, ...) goes through Pillow's ``convert("RGB")``; an alpha
    channel is dropped, not composited.

* EXIF orientation is not applied; multi-frame files give their first frame.
* Truncated or corrupt files raise `DatasetError` naming the file (Pillow's
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at its default, False).  PNG and JPEG files are also
  checked for damage Pillow lets through (bad chunk CRCs, a missing end, cut scan data): see
  `fidlens.data.image_integrity`.  Empty files and files that are not images are refused by name.
* Bombs are refused before they cost memory: each image file or ZIP member may hold at most
  `DecodeLimits.max_bytes` encoded bytes (declared size checked first, reads bounded) and declare
  at most `DecodeLimits.max_pixels` pixels (checked from the header, before decoding); see
  `fidlens.data.image_limits` for the defaults and the FIDLENS_MAX_IMAGE_* variables.
* ZIP members that are symbolic links, and names stored twice in one ZIP, are refused.
* Images of different sizes may share a set: the detector resizes each image on its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import operator
import os
import stat
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from fidlens.core.errors import DatasetError
from fidlens.data.image_integrity import structure_problem
from fidlens.data.image_limits import DecodeLimits, human_bytes, open_image_lazily

__all__ = [
    "IMAGE_EXTENSIONS",
    "DecodeLimits",
    "FolderImageSource",
    "ImageModeWarning",
    "ImageSource",
    "ZipImageSource",
    "decode_image",
    "open_image_source",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".pgm",
    ".ppm",
    ".webp",
    ".tif",
    ".tiff",
)

_HASH_TAG = b"fidlens-content-v1\n"
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


class ImageModeWarning(UserWarning):
    """An image had a colour mode other than RGB or greyscale and was converted to RGB."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _is_hidden(relname: str) -> bool:
    parts = relname.split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


# ---------------------------------------------------------------------------------------------
# Decoding

_MODULE_WARNED: set[tuple[str, str]] = set()


def _to_rgb(img: Image.Image, name: str, source_label: str, warned: set[str] | None) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        arr = np.asarray(img, dtype=np.uint8)
    elif mode in ("L", "1"):
        grey = np.asarray(img.convert("L") if mode == "1" else img, dtype=np.uint8)
        arr = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        key = (str(source_label), mode)
        seen = (mode in warned) if warned is not None else (key in _MODULE_WARNED)
        if not seen:
            if warned is not None:
                warned.add(mode)
            else:
                _MODULE_WARNED.add(key)
            warnings.warn(
                f"{source_label}: image {name} has mode {mode!r}; converting it (and any other "
                f"{mode!r} images in this source) to RGB",
                ImageModeWarning,
                stacklevel=4,
            )
        if mode in _SIXTEEN_BIT_MODES:
            # uint32 holds 65535 * 255 + 32767 exactly, at half the memory of int64
            wide = np.clip(np.asarray(img), 0, 65535).astype(np.uint32)
            grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
            arr = np.repeat(grey[:, :, None], 3, axis=2)
        else:
            arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - defensive
        raise DatasetError(
            f"cannot decode image {name} in {source_label}: unexpected array shape {arr.shape}"
        )
    return np.ascontiguousarray(arr, dtype=np.uint8)


def decode_image(
    data: bytes,
    name: str,
    source_label: object,
    *,
    warned: set[str] | None = None,
    limits: DecodeLimits | None = None,
) -> np.ndarray:
    """Decode encoded image bytes to a C-contiguous ``(H, W, 3)`` uint8 array.

    `name` and `source_label` only appear in messages.  `warned` is the set of modes already
    warned about for this source (updated in place); when None, a module-wide registry keyed by
    ``(source_label, mode)`` is used.  `limits` (default: `DecodeLimits.from_env()`) caps the
    encoded size and the pixel count, checked before decoding.  Raises `DatasetError` if the
    bytes are empty, damaged, too large or cannot be decoded.
    """
    limits = DecodeLimits.from_env() if limits is None else limits
    prefix = f"cannot decode image {name} in {source_label}"
    limits.check_bytes(len(data), f"image {name} in {source_label}")
    if not data:
        raise DatasetError(f"{prefix}: the file is empty (0 bytes)")
    problem = structure_problem(data)
    if problem:
        raise DatasetError(f"{prefix}: {problem}")
    try:
        img = open_image_lazily(data)
    except UnidentifiedImageError:
        raise DatasetError(
            f"{prefix}: not an image format Pillow can read (it starts with {data[:16]!r})"
        ) from None
    except Exception as exc:
        raise DatasetError(f"{prefix}: {_one_line(exc) or type(exc).__name__}") from None
    try:
        with img:
            width, height = img.size
            limits.check_pixels(width, height, f"image {name} in {source_label}")
            img.load()  # force full decode here so truncation/corruption is caught now
            return _to_rgb(img, name, str(source_label), warned)
    except DatasetError:
        raise
    except Image.DecompressionBombError as exc:  # a later frame or tile, past Pillow's own limit
        raise DatasetError(f"{prefix}: {_one_line(exc)}") from None
    except Exception as exc:
        reason = _one_line(exc) or type(exc).__name__
        raise DatasetError(f"{prefix}: {reason}") from None


# ---------------------------------------------------------------------------------------------
# Content hashing


class _ContentHasher:
    """sha256 over the selection parameters and, per selected image, its name and raw bytes."""

    def __init__(self, selection: dict[str, Any]):
        self._h = hashlib.sha256(_HASH_TAG)
        self._h.update(json.dumps(selection, sort_keys=True).encode() + b"\n")

    def update(self, name: str, data: bytes) -> None:
        encoded = name.encode("utf-8")
        self._h.update(len(encoded).to_bytes(8, "little") + encoded)
        self._h.update(len(data).to_bytes(8, "little"))
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Sources


class ImageSource:
    """A selected, ordered list of images; ``source[i]`` is a ``(H, W, 3)`` uint8 array.

    Attributes: `path` (as given), `kind` ('folder' or 'zip'), `names` (relative names of the
    selected images, in order).  Subclasses implement `_read_bytes_by_name`.
    """

    kind: str = "abstract"

    def __init__(
        self,
        path: Path,
        all_names: list[str],
        max_images: int | None,
        subset_seed: int | None,
        limits: DecodeLimits | None = None,
    ):
        self.path = Path(path)
        self.limits = DecodeLimits.from_env() if limits is None else limits
        self.num_available = len(all_names)
        indices, self._selection = _select(len(all_names), max_images, subset_seed)
        self.names: list[str] = [all_names[i] for i in indices]
        self._warned: set[str] = set()
        self._content_hash: str | None = None

    # -- sequence protocol --
    def __len__(self) -> int:
        return len(self.names)

    def _name_at(self, i: int) -> str:
        i = operator.index(i)
        n = len(self.names)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"image index {i} out of range for {n} images")
        return self.names[i]

    def __getitem__(self, i: int) -> np.ndarray:
        name = self._name_at(i)
        return decode_image(
            self._read_bytes_by_name(name), name, self.path, warned=self._warned, limits=self.limits
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def read_bytes(self, i: int) -> bytes:
        """The raw (encoded) file bytes of selected image `i`."""
        return self._read_bytes_by_name(self._name_at(i))

    def decode_bytes(self, data: bytes, name: str) -> np.ndarray:
        """Decode bytes read by `read_bytes`, sharing this source's once-per-mode warnings."""
        return decode_image(data, name, self.path, warned=self._warned, limits=self.limits)

    def _read_bytes_by_name(self, name: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def shard(self, start: int, stop: int) -> ImageSource:
        """Images [start, stop) of this selection as a source of their own (a shard of a sharded set).

        The range joins the selection, so the shard's content hash (its cache key) differs from
        the whole set's and from every other shard's.
        """
        if not 0 <= start < stop <= len(self):
            raise DatasetError(f"shard [{start}, {stop}) lies outside the {len(self)} images of {self.path}")
        part = copy.copy(self)
        part.names = self.names[start:stop]
        part._selection = {**self.selection, "shard": [start, stop]}
        part._content_hash = None
        part._warned = set()
        return part

    # -- metadata --
    @property
    def selection(self) -> dict[str, Any]:
        """Normalised selection: ``{"max_images": k or None, "subset_seed": seed or None}``.

        Both are None when every image is used (no limit, or a limit >= the number available);
        `subset_seed` is None for a first-k selection.
        """
        return dict(self._selection)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "num_images": len(self),
            "num_available": self.num_available,
            "selection": self.selection,
        }

    def content_hasher(self) -> _ContentHasher:
        """A fresh hasher seeded with this selection; feed it ``(name, bytes)`` in order."""
        return _ContentHasher(self.selection)

    def content_hash(self) -> str:
        """sha256 hex over the selection and each selected image's name and raw bytes, in order.

        Independent of the absolute path, so a moved or copied dataset hashes the same.  Labels
        are not included (they do not affect image features).  Computed once and memoised.
        """
        if self._content_hash is None:
            hasher = self.content_hasher()
            for name in self.names:
                hasher.update(name, self._read_bytes_by_name(name))
            self._content_hash = hasher.hexdigest()
        return self._content_hash

    def labels(self) -> np.ndarray | None:
        """Per-image labels aligned with `names`, or None if the source has none."""
        return None

    def raw_labels(self) -> list[Any] | None:
        """Labels as stored (JSON values) aligned with `names`, or None."""
        return None

    def close(self) -> None:
        """Release any open file handle (reopened automatically on next access)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {len(self)} images)"


def _select(
    n: int, max_images: int | None, subset_seed: int | None
) -> tuple[list[int], dict[str, Any]]:
    if max_images is None or max_images >= n:
        return list(range(n)), {"max_images": None, "subset_seed": None}
    if subset_seed is None:
        return list(range(max_images)), {"max_images": max_images, "subset_seed": None}
    chosen = np.random.RandomState(subset_seed).choice(n, max_images, replace=False)
    return sorted(int(i) for i in chosen), {"max_images": max_images, "subset_seed": subset_seed}


class FolderImageSource(ImageSource):
    """Images found recursively under a folder."""

    kind = "folder"

    def __init__(
        self,
        path: Path,
        max_images: int | None = None,
        subset_seed: int | None = None,
        limits: DecodeLimits | None = None,
    ):
        path = Path(path)
        names = _scan_folder(path)
        if not names:
            exts = ", ".join(IMAGE_EXTENSIONS)
            raise DatasetError(
                f"no images found in {path} (looked for {exts}, including subfolders)"
            )
        super().__init__(path, names, max_images, subset_seed, limits)

    def _read_bytes_by_name(self, name: str) -> bytes:
        what = f"image {name} in {self.path}"
        try:
            with open(self.path / name, "rb") as fh:
                self.limits.check_bytes(os.fstat(fh.fileno()).st_size, what)
                data = fh.read(self.limits.max_bytes + 1)  # bounded even if the file grows
        except OSError as exc:
            reason = _one_line(exc.strerror or exc)
            raise DatasetError(f"cannot read {what}: {reason}") from None
        self.limits.check_bytes(len(data), what)
        return data


def _scan_folder(root: Path) -> list[str]:
    names: list[str] = []
    seen_dirs: set[str] = set()

    def onerror(exc: OSError) -> None:
        raise DatasetError(f"cannot list folder {exc.filename}: {_one_line(exc.strerror or exc)}")

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for fname in filenames:
            if fname.startswith(".") or not _is_image_name(fname):
                continue
            if not os.path.isfile(os.path.join(dirpath, fname)):
                continue
            names.append(fname if rel_dir == "." else f"{rel_dir}/{fname}")
    names.sort()
    return names


class ZipImageSource(ImageSource):
    """Images inside a ZIP archive (e.g. a StyleGAN dataset ZIP), with optional dataset.json labels.

    The `zipfile.ZipFile` handle is opened lazily and reopened in each new process (it is never
    pickled), so the source works in DataLoader worker processes.
    """

    kind = "zip"

    def __init__(
        self,
        path: Path,
        max_images: int | None = None,
        subset_seed: int | None = None,
        limits: DecodeLimits | None = None,
    ):
        path = Path(path)
        self._zf: zipfile.ZipFile | None = None
        self._zf_pid: int | None = None
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise DatasetError(f"{path} is not a readable ZIP archive ({_one_line(exc)})") from None
        except OSError as exc:
            raise DatasetError(f"cannot read {path}: {_one_line(exc.strerror or exc)}") from None
        self._has_dataset_json = any(info.filename == "dataset.json" for info in infos)
        selected = [
            info
            for info in infos
            if not info.is_dir() and _is_image_name(info.filename) and not _is_hidden(info.filename)
        ]
        _refuse_odd_members(path, selected)
        names = sorted(info.filename for info in selected)
        if not names:
            raise DatasetError(f"{path} contains no images; is it a StyleGAN dataset ZIP?")
        self._raw_labels_cache: list[Any] | None = None
        self._labels_loaded = False
        super().__init__(path, names, max_images, subset_seed, limits)

    def _zip(self) -> zipfile.ZipFile:
        pid = os.getpid()
        if self._zf is None or self._zf_pid != pid:
            # After a fork the inherited handle shares its file offset with the parent: never
            # reuse it, just drop it and open our own.
            self._zf = None
            try:
                self._zf = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, EOFError, ValueError) as exc:
                raise DatasetError(
                    f"{self.path} is not a readable ZIP archive ({_one_line(exc)})"
                ) from None
            except OSError as exc:
                reason = _one_line(exc.strerror or exc)
                raise DatasetError(f"cannot read {self.path}: {reason}") from None
            self._zf_pid = pid
        return self._zf

    def _read_member(self, name: str, kind: str = "image") -> bytes:
        """A member's bytes, refusing before reading one that declares more than the limit."""
        zf = self._zip()
        info = zf.getinfo(name)
        what = f"{kind} {name} in {self.path}"
        detail = ""
        if info.compress_type != zipfile.ZIP_STORED and info.compress_size > 0:
            ratio = info.file_size / info.compress_size
            detail = f"uncompressed, from {human_bytes(info.compress_size)}: {ratio:.0f}:1"
        self.limits.check_bytes(info.file_size, what, detail)
        with zf.open(info) as fh:  # zipfile stops at the declared size; the bound is a second guard
            data = fh.read(self.limits.max_bytes + 1)
        self.limits.check_bytes(len(data), what)
        return data

    def _read_bytes_by_name(self, name: str) -> bytes:
        try:
            return self._read_member(name)
        except DatasetError:
            raise
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            KeyError,
            NotImplementedError,
            RuntimeError,
            ValueError,
        ) as exc:
            reason = _one_line(exc) or type(exc).__name__
            raise DatasetError(f"cannot read image {name} from {self.path}: {reason}") from None

    def close(self) -> None:
        if self._zf is not None and self._zf_pid == os.getpid():
            self._zf.close()
        self._zf = None
        self._zf_pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zf"] = None
        state["_zf_pid"] = None
        return state

    # -- labels --
    def raw_labels(self) -> list[Any] | None:
        if not self._labels_loaded:
            self._raw_labels_cache = self._load_raw_labels()
            self._labels_loaded = True
        return None if self._raw_labels_cache is None else list(self._raw_labels_cache)

    def _load_raw_labels(self) -> list[Any] | None:
        if not self._has_dataset_json:
            return None
        try:
            meta = json.loads(self._read_member("dataset.json", kind="member"))
        except DatasetError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise DatasetError(
                f"dataset.json in {self.path} is not readable JSON: {_one_line(exc)}"
            ) from None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if labels is None:
            return None
        try:
            mapping = {str(fname).replace("\\", "/"): value for fname, value in labels}
        except (TypeError, ValueError):
            raise DatasetError(
                f"dataset.json in {self.path}: 'labels' must be a list of [filename, label] pairs"
            ) from None
        out = []
        for name in self.names:
            if name not in mapping:
                raise DatasetError(f"dataset.json in {self.path} has no label for image {name}")
            out.append(mapping[name])
        return out

    def labels(self) -> np.ndarray | None:
        """Labels aligned with `names`: int64 for scalar labels, float32 for vectors; or None."""
        raw = self.raw_labels()
        if raw is None:
            return None
        try:
            arr = np.array(raw)
        except ValueError:
            raise DatasetError(
                f"dataset.json in {self.path}: labels have inconsistent shapes"
            ) from None
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            return arr.astype(np.int64)
        if arr.dtype.kind in "iufb":
            return arr.astype(np.float32)
        raise DatasetError(f"dataset.json in {self.path}: labels must be numbers or number lists")


def _refuse_odd_members(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Symbolic links and names stored twice make a ZIP's images ambiguous: refuse them."""
    seen: set[str] = set()
    for info in infos:
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetError(
                f"{path}: member {info.filename} is a symbolic link; fidlens reads only regular "
                "files from a ZIP (store the image itself)"
            )
        if info.filename in seen:
            raise DatasetError(
                f"{path} stores {info.filename} twice; rebuild the ZIP so each image appears once"
            )
        seen.add(info.filename)


def open_image_source(
    path: str | os.PathLike,
    *,
    max_images: int | None = None,
    subset_seed: int | None = None,
    limits: DecodeLimits | None = None,
) -> ImageSource:
    """Open a folder of images or a ``.zip`` of images.

    Selection: with ``subset_seed=None`` the first `max_images` images in sorted order are used.
    With a seed, the subset is ``np.random.RandomState(subset_seed).choice(n, max_images,
    replace=False)``, sorted ascending (so the images stay in name order).  A `max_images` larger
    than the number of images uses them all; a seed without `max_images` is ignored.  `limits`
    (default `DecodeLimits.from_env()`) bounds what each image may cost; see `DecodeLimits`.
    """
    p = Path(path)
    limits = DecodeLimits.from_env() if limits is None else limits
    if max_images is not None:
        if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)):
            raise DatasetError(f"max_images must be a whole number (got {max_images!r})")
        max_images = int(max_images)
        if max_images < 1:
            raise DatasetError(f"max_images must be at least 1 (got {max_images})")
    if subset_seed is not None:
        if isinstance(subset_seed, bool) or not isinstance(subset_seed, (int, np.integer)):
            raise DatasetError(f"subset_seed must be a whole number (got {subset_seed!r})")
        subset_seed = int(subset_seed)
        if not 0 <= subset_seed < 2**32:
            raise DatasetError(f"subset_seed must be between 0 and 2**32 - 1 (got {subset_seed})")
    if not p.exists():
        raise DatasetError(f"dataset path does not exist: {p}")
    if p.is_dir():
        return FolderImageSource(p, max_images, subset_seed, limits)
    if p.suffix.lower() == ".zip":
        return ZipImageSource(p, max_images, subset_seed, limits)
    raise DatasetError(f"{p} is neither a folder of images nor a .zip file")
