"""The PNG/JPEG structure checks: no good file refused, no truncation accepted; colour modes as documented."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from fidlens.data.datasets import ImageModeWarning, decode_image, open_image_source
from fidlens.data.image_integrity import jpeg_problem, png_problem, structure_problem


def smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
    return np.clip(base + rng.integers(-12, 13, base.shape), 0, 255).astype(np.uint8)


def pil_bytes(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


JPEG_OPTIONS = [
    {"quality": 5}, {"quality": 95}, {"quality": 100, "subsampling": 0}, {"subsampling": 1},
    {"progressive": True}, {"progressive": True, "optimize": True}, {"restart_marker_blocks": 1},
    {"restart_marker_blocks": 7}, {"restart_marker_rows": 1, "progressive": True},
    {"comment": b"has \xff\xd9 inside"}, {"icc_profile": b"\xff\xd8\xff\xd9" * 40},
]


def good_files() -> list[tuple[str, bytes]]:
    files = []
    for h, w in [(1, 1), (7, 9), (17, 33), (64, 64), (120, 97)]:
        arr = smooth(h, w, seed=h)
        for mode in ("RGB", "L", "CMYK"):
            for options in JPEG_OPTIONS:
                files.append((f"{h}x{w} {mode} jpeg {options}", pil_bytes(Image.fromarray(arr).convert(mode), "JPEG", **options)))
        for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):
            files.append((f"{h}x{w} {mode} png", pil_bytes(Image.fromarray(arr).convert(mode), "PNG")))
        files.append((f"{h}x{w} png optimized", pil_bytes(Image.fromarray(arr), "PNG", optimize=True)))
        for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 3],
                      [cv2.IMWRITE_JPEG_RST_INTERVAL, 2, cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
            files.append((f"{h}x{w} opencv jpeg {flags}", cv2.imencode(".jpg", arr, flags)[1].tobytes()))
        files.append((f"{h}x{w} opencv png", cv2.imencode(".png", arr)[1].tobytes()))
    jpeg = pil_bytes(Image.fromarray(smooth(40, 40)), "JPEG")
    exif = b"Exif\x00\x00" + pil_bytes(Image.fromarray(smooth(8, 8)), "JPEG")  # an embedded thumbnail
    files.append(("jpeg with thumbnail", jpeg[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[2:]))
    files.append(("jpeg with bytes after EOI", jpeg + b"trailing camera data"))
    files.append(("png with bytes after IEND", pil_bytes(Image.fromarray(smooth(9, 9)), "PNG") + b"\x00\x01"))
    return files


def test_no_good_png_or_jpeg_is_refused():
    files = good_files()
    assert len(files) > 150
    for label, data in files:
        assert structure_problem(data) is None, label
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImageModeWarning)
            assert decode_image(data, label, "good files").ndim == 3


def test_every_truncation_is_refused():
    png = pil_bytes(Image.fromarray(smooth(20, 20)), "PNG")
    jpeg = pil_bytes(Image.fromarray(smooth(20, 20)), "JPEG", progressive=True, restart_marker_blocks=2)
    for cut in range(8, len(png)):
        assert png_problem(png[:cut]), cut
    for cut in range(2, len(jpeg)):
        assert jpeg_problem(jpeg[:cut]), cut


def test_other_formats_are_left_to_pillow():
    assert structure_problem(pil_bytes(Image.fromarray(smooth(5, 5)), "BMP")[:-10]) is None
    assert structure_problem(b"") is None and structure_problem(b"plain text") is None


@pytest.mark.parametrize(
    ("mode", "fmt", "expected"),
    [
        ("P", "PNG", lambda img: np.asarray(img.convert("RGB"))),
        ("LA", "PNG", lambda img: np.repeat(np.asarray(img.convert("L"))[:, :, None], 3, axis=2)),
        ("CMYK", "JPEG", lambda img: np.asarray(img.convert("RGB"))),
        ("I;16", "PNG", lambda img: np.repeat(((np.asarray(img).astype(np.int64) * 255 + 32767) // 65535)
                                              .astype(np.uint8)[:, :, None], 3, axis=2)),
    ],
)
def test_other_colour_modes_convert_with_one_warning_per_set(tmp_path, mode, fmt, expected):
    arrays = [smooth(12, 10, seed=s) for s in range(3)]
    for k, arr in enumerate(arrays):
        img = Image.fromarray(arr).convert(mode) if mode != "I;16" else Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
        img.save(tmp_path / f"im{k}.{fmt.lower()}", format=fmt)
    source = open_image_source(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = [source[i] for i in range(len(source))]
    mode_warnings = [w for w in caught if issubclass(w.category, ImageModeWarning)]
    assert len(mode_warnings) == 1 and "im0" in str(mode_warnings[0].message)
    for k, got in enumerate(out):
        with Image.open(tmp_path / f"im{k}.{fmt.lower()}") as img:
            np.testing.assert_array_equal(got, expected(img))
