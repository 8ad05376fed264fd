"""Ceilings on what one image may cost, checked before anything large is read or decoded.

A 1.6 MB ZIP can hold a member that inflates to gigabytes, and a PNG of a few hundred kilobytes
can declare 100 megapixels.  fidlens refuses such files up front, naming the file, its size and
the limit, instead of discovering the problem after the memory is gone:

* `max_bytes`: the encoded size of one image file or ZIP member (declared size checked before
  reading, and every read bounded, so a lying ZIP header cannot exceed it either);
* `max_pixels`: width x height from the image header, checked before the pixels are decoded.

The defaults admit datasets of 1024² (and up to 8192²) images.  Raise them per call with
`DecodeLimits(...)`, or for every run with the environment variables ``FIDLENS_MAX_IMAGE_PIXELS``
and ``FIDLENS_MAX_IMAGE_BYTES``.  Pillow's own bomb check (``Image.MAX_IMAGE_PIXELS``) is
deferred to these limits and its global is never left changed.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from fidlens.core.errors import DatasetError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ENV_MAX_BYTES",
    "ENV_MAX_PIXELS",
    "DecodeLimits",
    "human_bytes",
    "open_image_lazily",
]

DEFAULT_MAX_PIXELS = 64 * 1024 * 1024  # 67.1 megapixels: 8192 x 8192
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # 256 MiB per image file or ZIP member
ENV_MAX_PIXELS = "FIDLENS_MAX_IMAGE_PIXELS"
ENV_MAX_BYTES = "FIDLENS_MAX_IMAGE_BYTES"

_PILLOW_GLOBAL = threading.Lock()


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; for messages."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover - loop always returns


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise DatasetError(f"{what} must be a whole number of at least 1 (got {value!r})")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise DatasetError(f"{what} must be a whole number of at least 1 (got {value!r})") from None
    if number < 1 or (not isinstance(value, str) and number != value):
        raise DatasetError(f"{what} must be a whole number of at least 1 (got {value!r})")
    return number


@dataclass(frozen=True)
class DecodeLimits:
    """Per-image ceilings: encoded bytes (file or ZIP member) and decoded pixels."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_pixels", _positive_int(self.max_pixels, "max_pixels"))
        object.__setattr__(self, "max_bytes", _positive_int(self.max_bytes, "max_bytes"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DecodeLimits:
        """The defaults, overridden by FIDLENS_MAX_IMAGE_PIXELS / FIDLENS_MAX_IMAGE_BYTES when set."""
        env = os.environ if environ is None else environ
        pixels = env.get(ENV_MAX_PIXELS, "").strip()
        size = env.get(ENV_MAX_BYTES, "").strip()
        return cls(
            max_pixels=_positive_int(pixels, ENV_MAX_PIXELS) if pixels else DEFAULT_MAX_PIXELS,
            max_bytes=_positive_int(size, ENV_MAX_BYTES) if size else DEFAULT_MAX_BYTES,
        )

    def check_bytes(self, size: int, what: str, detail: str = "") -> None:
        """Refuse an encoded image of `size` bytes (`what` names it; `detail` adds context)."""
        if size > self.max_bytes:
            extra = f" ({detail})" if detail else ""
            raise DatasetError(
                f"{what} is {human_bytes(size)}{extra}, above the limit of {human_bytes(self.max_bytes)} "
                f"per image file; if it is genuine, raise the limit with --max-image-bytes or {ENV_MAX_BYTES}=<bytes>"
            )

    def check_pixels(self, width: int, height: int, what: str) -> None:
        """Refuse an image whose header declares more than `max_pixels` pixels."""
        if width * height > self.max_pixels:
            raise DatasetError(
                f"{what} is {width}x{height} = {width * height / 1e6:.1f} megapixels, above the limit of "
                f"{self.max_pixels / 1e6:.1f} megapixels per image; if it is genuine, raise the limit "
                f"with --max-image-pixels or {ENV_MAX_PIXELS}=<pixels>"
            )


def open_image_lazily(data: bytes) -> Image.Image:
    """``Image.open`` (header only) with Pillow's bomb check left to `DecodeLimits`.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice that.  fidlens checks
    its own, configurable limit right after this call, so Pillow's warning is silenced here, and
    when Pillow refuses, the header is parsed once more with its global lifted (under a lock,
    restored before returning) so that the fidlens limit decides and names the file.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            pass
    with _PILLOW_GLOBAL:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
