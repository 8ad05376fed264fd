"""Build StyleGAN-format dataset ZIPs from a folder or another ZIP.

Layout written: uncompressed (ZIP_STORED) PNGs named ``00000/img00000000.png``,
``00000/img00000001.png``, ... (folder = index // 1000), then a top-level ``dataset.json`` with
``"labels"`` (carried over from a labelled source ZIP, else null) and a ``"fidlens"`` object that
records how the ZIP was made (see `build_stylegan_zip`).  Entries get a fixed timestamp, so the
same inputs give a byte-identical ZIP.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fidlens.core.atomic import atomic_path
from fidlens.data.datasets import DecodeLimits, open_image_source
from fidlens.core.errors import DatasetError
from fidlens.core.progress import progress_bar

__all__ = ["PILLOW_ROUNDING", "RESIZE_FILTERS", "build_stylegan_zip", "describe_recipe", "read_zip_metadata",
           "stylegan_name"]

RESIZE_FILTERS: dict[str, Image.Resampling] = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}

# How resized pixels become uint8 here (Pillow resamples 8-bit images in fixed point): recorded in
# every resized ZIP, because the filter and the rounding of the reals move FID (box vs Lanczos on
# FFHQ-256: about 1 FID for the same generator).
PILLOW_ROUNDING = ("Pillow uint8 resampling: two 1-D passes (horizontal, then vertical), each rounding its "
                   "fixed-point sum half up to uint8 and clipping to 0-255")

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_PNG_COMPRESS_LEVEL = 6


def stylegan_name(index: int) -> str:
    """The StyleGAN archive name of image `index`, e.g. 1234 -> '00001/img00001234.png'."""
    return f"{index // 1000:05d}/img{index:08d}.png"


def _zipinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _center_crop_resize(
    arr: np.ndarray, resolution: int, resample: Image.Resampling
) -> tuple[np.ndarray, bool]:
    h, w = arr.shape[:2]
    img = Image.fromarray(arr)
    cropped = h != w
    if cropped:
        side = min(h, w)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), resample=resample)
    return np.asarray(img, dtype=np.uint8), cropped


def _encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def build_stylegan_zip(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    resolution: int | None = None,
    resize_filter: str = "lanczos",
    max_images: int | None = None,
    progress: bool = True,
    limits: DecodeLimits | None = None,
    source_resolution: int | None = None,
) -> dict[str, Any]:
    """Write the images of `source` (folder or ZIP) to `dest` as a StyleGAN dataset ZIP.

    With `resolution` set, each image is first centre-cropped to a square (the longer side is
    trimmed equally on both ends, any odd pixel at the end) if it is not square, then resized to
    ``resolution x resolution`` with `resize_filter` (a key of `RESIZE_FILTERS`).  With
    ``resolution=None`` images are stored at native size, and they must all share one size.
    `limits` bounds what each source image may cost (default `DecodeLimits.from_env()`).
    `source_resolution` pins the source: every source image must be that size, square (e.g. 1024
    for FFHQ's images1024x1024), else the build stops naming the first image that is not.

    The ZIP is written atomically.  Returns the metadata stored under ``"fidlens"`` in
    dataset.json: source (as given), source_kind, source_content_hash (`ImageSource.content_hash`
    of the selected source images), num_images, image_size ([width, height]), resolution (or
    None = native), resize_filter (None without resize), center_crop (True if any image was
    cropped), source_image_sizes (the distinct [width, height] of the source images),
    source_resolution (as pinned, or None), rounding (how resized pixels became uint8, None
    without resize), recipe (one line saying all of it), fidlens_version.
    """
    import fidlens

    filter_name = str(resize_filter).lower()
    if filter_name not in RESIZE_FILTERS:
        raise DatasetError(
            f"unknown resize filter {resize_filter!r}; choose one of: {', '.join(RESIZE_FILTERS)}"
        )
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
            raise DatasetError(f"resolution must be a whole number of pixels (got {resolution!r})")
        resolution = int(resolution)
        if resolution < 1:
            raise DatasetError(f"resolution must be at least 1 pixel (got {resolution})")
    if source_resolution is not None and (isinstance(source_resolution, bool) or int(source_resolution) < 1):
        raise DatasetError(f"source_resolution must be a whole number of pixels (got {source_resolution!r})")
    dest_path = Path(dest)
    if dest_path.suffix.lower() != ".zip":
        raise DatasetError(f"destination {dest_path} must be a .zip file")
    if dest_path.is_dir():
        raise DatasetError(f"destination {dest_path} is a folder")

    src = open_image_source(source, max_images=max_images, limits=limits)
    try:
        if Path(source).resolve() == dest_path.resolve():
            raise DatasetError(f"destination {dest_path} is the same file as the source")
        resample = RESIZE_FILTERS[filter_name]
        raw_labels = src.raw_labels()
        hasher = src.content_hasher()
        any_cropped = False
        ref_size: tuple[int, int] | None = None
        ref_name = ""
        source_sizes: set[tuple[int, int]] = set()
        with (
            atomic_path(dest_path) as tmp,
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
            progress_bar(
                total=len(src), disable=not progress, desc=f"building {dest_path.name}", unit="img"
            ) as bar,
        ):
            for i, name in enumerate(src.names):
                data = src.read_bytes(i)
                hasher.update(name, data)
                arr = src.decode_bytes(data, name)
                source_size = (arr.shape[1], arr.shape[0])
                if source_resolution is not None and source_size != (source_resolution, source_resolution):
                    raise DatasetError(
                        f"image {name} in {src.path} is {source_size[0]}x{source_size[1]}, but this recipe "
                        f"starts from {source_resolution}x{source_resolution} images"
                    )
                source_sizes.add(source_size)
                if resolution is not None:
                    arr, cropped = _center_crop_resize(arr, resolution, resample)
                    any_cropped = any_cropped or cropped
                size = (arr.shape[1], arr.shape[0])
                if ref_size is None:
                    ref_size, ref_name = size, name
                elif size != ref_size:
                    raise DatasetError(
                        f"image {name} in {src.path} is {size[0]}x{size[1]} but {ref_name} is "
                        f"{ref_size[0]}x{ref_size[1]}; all images in a StyleGAN dataset must "
                        "share one size (use --resolution to resize them)"
                    )
                zf.writestr(_zipinfo(stylegan_name(i)), _encode_png(arr))
                bar.update(1)

            metadata: dict[str, Any] = {
                "source": str(source),
                "source_kind": src.kind,
                "source_content_hash": hasher.hexdigest(),
                "num_images": len(src),
                "image_size": list(ref_size) if ref_size else None,
                "resolution": resolution,
                "resize_filter": filter_name if resolution is not None else None,
                "center_crop": any_cropped,
                "source_image_sizes": [list(size) for size in sorted(source_sizes)],
                "source_resolution": source_resolution,
                "rounding": PILLOW_ROUNDING if resolution is not None else None,
                "fidlens_version": fidlens.__version__,
            }
            metadata["recipe"] = describe_recipe(metadata)
            labels = None
            if raw_labels is not None:
                labels = [[stylegan_name(i), lab] for i, lab in enumerate(raw_labels)]
            dataset_json = json.dumps({"labels": labels, "fidlens": metadata})
            zf.writestr(_zipinfo("dataset.json"), dataset_json.encode("utf-8"))
    except OSError as exc:
        reason = " ".join(str(exc.strerror or exc).split())
        raise DatasetError(f"cannot write {dest_path}: {reason}") from None
    finally:
        src.close()
    return metadata


def describe_recipe(meta: dict[str, Any]) -> str:
    """One line for messages and captions: how a ZIP's images were made from their sources."""
    sizes = meta.get("source_image_sizes") or []
    source = (f"{meta['source_resolution']}² sources" if meta.get("source_resolution")
              else "sources of " + ", ".join(f"{w}x{h}" for w, h in sizes) if sizes else "sources")
    if meta.get("resolution") is None:
        return f"{source} stored at native size (no resize)"
    crop = "centre crop to square, " if meta.get("center_crop") else ""
    return (f"{source} → {crop}{meta['resize_filter']} (Pillow) → {meta['resolution']}²; "
            f"{meta.get('rounding') or PILLOW_ROUNDING}")


def read_zip_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``"fidlens"`` object from a ZIP's dataset.json, or None if there is none."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"dataset path does not exist: {p}")
    limits = DecodeLimits.from_env()
    try:
        with zipfile.ZipFile(p) as zf:
            if "dataset.json" not in zf.namelist():
                return None
            info = zf.getinfo("dataset.json")
            limits.check_bytes(info.file_size, f"dataset.json in {p}")
            with zf.open(info) as fh:
                raw = fh.read(limits.max_bytes + 1)
            limits.check_bytes(len(raw), f"dataset.json in {p}")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise DatasetError(
            f"{p} is not a readable ZIP archive ({' '.join(str(exc).split())})"
        ) from None
    except OSError as exc:
        raise DatasetError(
            f"cannot read {p}: {' '.join(str(exc.strerror or exc).split())}"
        ) from None
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise DatasetError(
            f"dataset.json in {p} is not valid JSON: {' '.join(str(exc).split())}"
        ) from None
    info = meta.get("fidlens") if isinstance(meta, dict) else None
    return info if isinstance(info, dict) else None
