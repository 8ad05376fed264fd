"""Bad image sets, ZIPs and feature-cache entries through the real CLI (issue 10, items 5, 6, 8).

Every bad input is generated here.  Image cases must be refused with one `error:` line naming the
file, leave nothing behind, and the repaired set must then give the reference statistics.  Cache
cases must succeed anyway: the damaged entry is named in one warning, moved to quarantine/, and
the recomputed statistics equal the first run's.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bad_input_harness import BadInput, check_bad_input, run_cli, snapshot, table
from PIL import Image

from fidlens.core.feature_cache import FeatureCacheWarning, entry_checksum
from fidlens.data.image_limits import ENV_MAX_BYTES, ENV_MAX_PIXELS
from fidlens.metrics.stats import FeatureSet, Statistics

pytestmark = pytest.mark.slow

N_IMAGES = 2
SIDE = 24


# ---------------------------------------------------------------------------------------------
# Inputs


def clean_images() -> list[np.ndarray]:
    """The reference set: smooth colour images (JPEG-friendly), always the same."""
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    out = []
    for k in range(N_IMAGES):
        img = np.stack([(x * 9 + 40 * k) % 256, (y * 7 + 90 * k) % 256, ((x + y) * 5) % 256], axis=-1)
        out.append(img.astype(np.uint8))
    return out


def noise(side: int) -> np.ndarray:
    return np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)


def encode(arr: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **options)
    return buf.getvalue()


def write_clean_set(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, arr in enumerate(clean_images()):
        (folder / f"img{i:03d}.png").write_bytes(encode(arr, "PNG"))
    return folder


def set_with(tmp: Path, name: str, data: bytes) -> Path:
    """The clean set, with `name` (bytes `data`) replacing its last image."""
    folder = write_clean_set(tmp / "set")
    (folder / f"img{N_IMAGES - 1:03d}.png").unlink()
    (folder / name).write_bytes(data)
    return folder


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def deflate_zeros(total: int, block: int = 1 << 20) -> bytes:
    """A raw deflate stream of `total` zero bytes, made without ever holding them all."""
    count, rest = divmod(total, block)
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = head.compress(bytes(block)) + head.flush(zlib.Z_FULL_FLUSH)  # independent, repeatable block
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    return one * count + tail.compress(bytes(rest)) + tail.flush(zlib.Z_FINISH)


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black RGB PNG of width x height pixels that weighs a few hundred kilobytes."""
    raw_size = height * (1 + 3 * width)
    adler = ((raw_size % 65521) << 16) | 1  # adler32 of raw_size zero bytes
    idat = b"\x78\xda" + deflate_zeros(raw_size) + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def raw_zip(path: Path, members: list[dict]) -> Path:
    """Write a ZIP by hand, so headers can say what a hostile file says.

    Each member: name, data (as stored), method (0 stored / 8 deflate), crc, size (declared
    uncompressed size) and optional unix mode.
    """
    local, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode()
        mode = m.get("mode", 0o100644)
        fields = (20, 0, m["method"], 0, 0x21, m["crc"], len(m["data"]), m["size"], len(name), 0)
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + m["data"]
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, *fields, 0, 0, 0, mode << 16, offset)
        central += name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local) + bytes(central) + end)
    return path


def stored(name: str, data: bytes, **extra) -> dict:
    return {"name": name, "data": data, "method": 0, "crc": zlib.crc32(data), "size": len(data), **extra}


def clean_members() -> list[dict]:
    return [stored(f"{i:05d}.png", encode(arr, "PNG")) for i, arr in enumerate(clean_images())]


# ---------------------------------------------------------------------------------------------
# The CLI, the reference answer and the bomb files (built once)


@pytest.fixture(scope="module")
def one_detector(default_weights):
    """Every CLI run in this module loads the same real detector; load it once."""
    from fidlens.extraction import pipeline

    real, loaded = pipeline.load_detector, {}

    def load_once(weights=None, device="auto"):
        key = (str(weights), str(device))
        if key not in loaded:
            loaded[key] = real(weights, device)
        return loaded[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "load_detector", load_once)
        yield


def common(tmp: Path) -> list[str]:
    return ["--weights", "default", "--device", "cpu", "--quiet", "--batch-size", "8", "--workers", "0",
            "--cache-dir", str(tmp / "cache")]


def stats_argv(tmp: Path, dataset: Path) -> list[str]:
    return ["stats", str(dataset), "-o", str(tmp / "out.npz"), *common(tmp)]


@pytest.fixture(scope="module")
def template(tmp_path_factory, one_detector) -> Path:
    """The clean set, its statistics (the reference answer) and a filled feature cache."""
    base = tmp_path_factory.mktemp("template")
    write_clean_set(base / "set")
    result = run_cli(["stats", str(base / "set"), "-o", str(base / "ref.npz"), *common(base)])
    assert result.code == 0, result.stderr
    assert len(list((base / "cache").glob("*.npz"))) == 1
    return base


@functools.cache
def zip_bomb_member() -> dict:
    """One ZIP member of 1.5 GiB of zeros, deflated to about 1.6 MB (the issue's bomb)."""
    size = 3 << 29
    crc, zeros = 0, bytes(1 << 20)
    for _ in range(size >> 20):
        crc = zlib.crc32(zeros, crc)
    return {"name": "00001.png", "data": deflate_zeros(size), "method": 8, "crc": crc, "size": size}


_REFERENCE: dict[str, Statistics] = {}


def assert_reference_answer(tmp: Path, dataset: Path, template_dir: Path) -> None:
    """The next good run (limits from the environment lifted) gives the reference statistics."""
    saved = {k: os.environ.pop(k) for k in (ENV_MAX_BYTES, ENV_MAX_PIXELS) if k in os.environ}
    try:
        result = run_cli(["stats", str(dataset), "-o", str(tmp / "good.npz"), *common(tmp)])
    finally:
        os.environ.update(saved)
    assert result.code == 0, result.stderr
    ref = Statistics.load(template_dir / "ref.npz")
    got = Statistics.load(tmp / "good.npz")
    np.testing.assert_allclose(got.mu, ref.mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.sigma, ref.sigma, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Bad images and ZIPs: refused with one line naming the file


def _jpeg(**options) -> bytes:
    return encode(clean_images()[-1], "JPEG", quality=90, **options)


def _scan_start(data: bytes) -> int:
    sos = data.rfind(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _png_idat_crc_flipped() -> bytes:
    data = bytearray(encode(clean_images()[-1], "PNG"))
    iend = data.rfind(b"IEND")
    data[iend - 5] ^= 0x01  # last byte of the IDAT chunk's CRC: the pixels themselves are intact
    return bytes(data)


def _jpeg_cut_and_closed() -> bytes:
    data = _jpeg(restart_marker_blocks=1)
    start = _scan_start(data)
    return data[: start + (len(data) - start) // 2] + b"\xff\xd9"


def _jpeg_stray_marker() -> bytes:
    data = _jpeg()
    at = _scan_start(data) + 40
    return data[:at] + b"\xff\x12" + data[at + 2 :]


def _jpeg_restarts_zeroed() -> bytes:
    data = bytearray(_jpeg(restart_marker_blocks=1))
    start = _scan_start(data)
    second = data.find(b"\xff\xd1", start)
    data[second - 4 : second + 4] = bytes(8)  # one restart marker and its neighbours wiped out
    return bytes(data)


def folder_case(id: str, name: str, make: bytes | Callable[[], bytes], expect: str, env: dict | None = None) -> BadInput:
    def build(tmp: Path) -> list[str]:
        return stats_argv(tmp, set_with(tmp, name, make() if callable(make) else make))

    return BadInput(id, build, expect, extra={"env": env or {}, "repair": "folder"})


def zip_case(id: str, members: Callable[[], list[dict]], expect: str) -> BadInput:
    def build(tmp: Path) -> list[str]:
        return stats_argv(tmp, raw_zip(tmp / "set.zip", members()))

    return BadInput(id, build, expect, extra={"env": {}, "repair": "zip"})


def _zipfile_case(id: str, write: Callable[[zipfile.ZipFile], None], expect: str) -> BadInput:
    def build(tmp: Path) -> list[str]:
        path = tmp / "set.zip"
        with zipfile.ZipFile(path, "w") as zf:
            write(zf)
        return stats_argv(tmp, path)

    return BadInput(id, build, expect, extra={"env": {}, "repair": "zip"})


def _symlink_member(zf: zipfile.ZipFile) -> None:
    for m in clean_members()[:-1]:
        zf.writestr(m["name"], m["data"])
    link = zipfile.ZipInfo("00001.png")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    zf.writestr(link, "/etc/passwd")


def _duplicate_member(zf: zipfile.ZipFile) -> None:
    for m in clean_members():
        zf.writestr(m["name"], m["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name" warning
        zf.writestr("00000.png", encode(np.zeros((SIDE, SIDE, 3), np.uint8), "PNG"))


def _only_directories(zf: zipfile.ZipFile) -> None:
    zf.writestr(zipfile.ZipInfo("faces.png/"), b"")
    zf.writestr(zipfile.ZipInfo("00000/"), b"")


def _truncated_zip_build(tmp: Path) -> list[str]:
    path = raw_zip(tmp / "set.zip", clean_members())
    path.write_bytes(path.read_bytes()[:-40])  # the central directory is cut
    return stats_argv(tmp, path)


def _bad_crc_member() -> list[dict]:
    members = clean_members()
    data = bytearray(members[-1]["data"])
    data[len(data) // 2] ^= 0xFF
    members[-1] = {**members[-1], "data": bytes(data)}  # stored CRC is the original one
    return members


def _fid_build(tmp: Path) -> list[str]:
    bad = set_with(tmp, "img001.jpg", _jpeg()[:-300])
    good = write_clean_set(tmp / "other")
    return ["fid", str(bad), str(good), *common(tmp)]


IMAGE_CASES = [
    folder_case("empty-file", "img001.png", b"", r"img001\.png.*empty \(0 bytes\)"),
    folder_case("text-named-png", "img001.png", b"this is a note, not a picture\n",
                r"img001\.png.*not an image format"),
    folder_case("png-bad-crc", "img001.png", _png_idat_crc_flipped, r"img001\.png.*chunk IDAT.*bad CRC"),
    folder_case("png-no-iend", "img001.png", lambda: encode(clean_images()[-1], "PNG")[:-12],
                r"img001\.png.*before its IEND"),
    folder_case("png-cut-in-half", "img001.png", lambda: (lambda d: d[: len(d) // 2])(encode(clean_images()[-1], "PNG")),
                r"img001\.png.*truncated"),
    folder_case("jpeg-cut-in-half", "img001.jpg", lambda: (lambda d: d[: len(d) // 2])(_jpeg()),
                r"img001\.jpg.*truncated"),
    folder_case("jpeg-no-eoi", "img001.jpg", lambda: _jpeg()[:-2], r"img001\.jpg.*end-of-image marker"),
    folder_case("jpeg-cut-and-closed", "img001.jpg", _jpeg_cut_and_closed, r"img001\.jpg.*restart markers"),
    folder_case("jpeg-stray-marker", "img001.jpg", _jpeg_stray_marker, r"img001\.jpg.*unexpected marker 0xFF12"),
    folder_case("jpeg-restart-wiped", "img001.jpg", _jpeg_restarts_zeroed, r"img001\.jpg.*restart marker"),
    folder_case("jpeg-no-soi", "img001.jpg", lambda: b"\x00\x00" + _jpeg()[2:], r"img001\.jpg.*not an image format"),
    folder_case("bmp-truncated", "img001.bmp", lambda: encode(clean_images()[-1], "BMP")[:-100],
                r"img001\.bmp.*truncated"),
    folder_case("webp-truncated", "img001.webp", lambda: (lambda d: d[: len(d) // 2])(encode(clean_images()[-1], "WEBP")),
                r"img001\.webp"),
    folder_case("png-88-megapixels", "img001.png", lambda: png_bomb(9400, 9400),
                rf"img001\.png.*9400x9400 = 88\.4 megapixels.*limit of 67\.1.*{ENV_MAX_PIXELS}"),
    folder_case("file-over-byte-limit", "img001.png", lambda: encode(noise(SIDE), "PNG"),
                rf"img001\.png .* is 1\.\d KiB, above the limit of 500 bytes.*{ENV_MAX_BYTES}", env={ENV_MAX_BYTES: "500"}),
    folder_case("pixel-limit-lowered", "img001.png", lambda: encode(noise(32), "PNG"),
                rf"img001\.png .* is 32x32.*limit of 0\.0 megapixels.*{ENV_MAX_PIXELS}", env={ENV_MAX_PIXELS: "600"}),
    folder_case("limit-variable-not-a-number", "img001.png", lambda: encode(clean_images()[-1], "PNG"),
                rf"{ENV_MAX_PIXELS} must be a whole number", env={ENV_MAX_PIXELS: "lots"}),
    zip_case("zip-1.5GiB-member", lambda: [*clean_members()[:-1], zip_bomb_member()],
             rf"00001\.png in .*set\.zip is 1\.5 GiB \(uncompressed, from 1\.5 MiB: \d+:1\).*limit of 256\.0 MiB.*{ENV_MAX_BYTES}"),
    zip_case("zip-lying-size-header", lambda: [*clean_members()[:-1], {**zip_bomb_member(), "size": 1000}],
             r"cannot read image 00001\.png from .*set\.zip: Bad CRC-32"),
    zip_case("zip-member-bad-crc", _bad_crc_member, r"00001\.png from .*set\.zip: Bad CRC-32"),
    zip_case("zip-member-88-megapixels", lambda: [*clean_members()[:-1], stored("00001.png", png_bomb(9400, 9400))],
             r"00001\.png in .*set\.zip is 9400x9400 = 88\.4 megapixels"),
    zip_case("zip-member-jpeg-cut", lambda: [*clean_members()[:-1], stored("00001.jpg", _jpeg()[:-200])],
             r"00001\.jpg in .*set\.zip.*truncated"),
    zip_case("zip-no-images", lambda: [stored("README.txt", b"hello"), stored("dataset.json", b"{}")],
             r"set\.zip contains no images"),
    _zipfile_case("zip-symlink-member", _symlink_member, r"member 00001\.png is a symbolic link"),
    _zipfile_case("zip-duplicate-member", _duplicate_member, r"stores 00000\.png twice"),
    _zipfile_case("zip-only-directories", _only_directories, r"set\.zip contains no images"),
    BadInput("zip-truncated", _truncated_zip_build, r"set\.zip is not a readable ZIP archive",
             extra={"env": {}, "repair": "zip"}),
    BadInput("fid-with-corrupt-jpeg", _fid_build, r"img001\.jpg.*truncated", extra={"env": {}, "repair": "folder"}),
]


@table(IMAGE_CASES)
def test_bad_image_input_is_refused(case: BadInput, tmp_path, template, monkeypatch):
    for name, value in case.extra["env"].items():
        monkeypatch.setenv(name, value)
    result = check_bad_input(case, tmp_path)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # The next good run, on the repaired set, gives the reference answer.
    if case.extra["repair"] == "folder":
        repaired = write_clean_set(tmp_path / "set")
    else:
        repaired = raw_zip(tmp_path / "set.zip", clean_members())
    assert_reference_answer(tmp_path, repaired, template)


# ---------------------------------------------------------------------------------------------
# Damaged feature-cache entries: named, quarantined, recomputed, same answer


def _entry(tmp: Path) -> Path:
    (path,) = (tmp / "cache").glob("*.npz")
    return path


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _rewrite(path: Path, arrays: dict[str, np.ndarray], *, reseal: bool) -> None:
    """Save `arrays` as the entry; with `reseal`, give it a checksum that matches the new contents."""
    if reseal:
        payload = {k: arrays[k] for k in ("pool3", "logits") if k in arrays}
        arrays = {**arrays, "checksum": np.array(entry_checksum(str(arrays["cache_key"]), str(arrays["meta"]), payload))}
    path.unlink()
    np.savez(path, **arrays)


def _nan_features(path: Path) -> None:
    arrays = _arrays(path)
    arrays["pool3"] = arrays["pool3"].copy()
    arrays["pool3"][0, 5] = np.nan
    _rewrite(path, arrays, reseal=True)  # a consistent checksum does not make NaN features usable


def _malformed_meta(path: Path) -> None:
    arrays = _arrays(path)
    arrays["meta"] = np.array('{"num_images": 2, "source": ')
    _rewrite(path, arrays, reseal=True)


def _zeroed_features(path: Path) -> None:
    arrays = _arrays(path)
    arrays["pool3"] = np.zeros_like(arrays["pool3"])
    _rewrite(path, arrays, reseal=False)


def _wrong_row_count(path: Path) -> None:
    arrays = _arrays(path)
    arrays["pool3"] = arrays["pool3"][:1]
    _rewrite(path, arrays, reseal=True)


def _wrong_checksum(path: Path) -> None:
    arrays = _arrays(path)
    arrays["checksum"] = np.array("0" * 64)
    _rewrite(path, arrays, reseal=False)


def _old_entry(path: Path) -> None:
    arrays = _arrays(path)
    path.unlink()
    FeatureSet(pool3=arrays["pool3"], meta=json.loads(str(arrays["meta"]))).save(path)  # no checksum


def _other_key(path: Path) -> None:
    arrays = _arrays(path)
    arrays["cache_key"] = np.array("f" * 32)
    _rewrite(path, arrays, reseal=True)


def _huge_declared_shape(path: Path) -> None:
    arrays = _arrays(path)
    pool3 = arrays.pop("pool3")
    header = np.lib.format.header_data_from_array_1_0(pool3)
    header["shape"] = (10**12, pool3.shape[1])
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    _rewrite(path, arrays, reseal=False)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("pool3.npy", member.getvalue() + pool3.tobytes())


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _text(path: Path) -> None:
    path.write_text("feature cache entry? no.\n")


def cache_case(id: str, damage: Callable[[Path], None], expect: str) -> BadInput:
    return BadInput(id, lambda tmp: [], expect, code=0, allowed_new=r"^cache/quarantine/", extra={"damage": damage})


CACHE_CASES = [
    cache_case("cache-nan-features", _nan_features, r"'pool3' holds non-finite values"),
    cache_case("cache-malformed-metadata", _malformed_meta, r"metadata is not valid JSON"),
    cache_case("cache-features-zeroed", _zeroed_features, r"checksum does not match"),
    cache_case("cache-wrong-row-count", _wrong_row_count, r"'pool3' holds 1 rows for 2 images"),
    cache_case("cache-wrong-checksum", _wrong_checksum, r"checksum does not match"),
    cache_case("cache-old-entry-no-checksum", _old_entry, r"has no checksum"),
    cache_case("cache-entry-of-another-key", _other_key, r"written for cache key 'f{32}'"),
    cache_case("cache-huge-declared-shape", _huge_declared_shape, r"declares shape \(1000000000000, 2048\)"),
    cache_case("cache-truncated", _truncated, r"not a readable \.npz"),
    cache_case("cache-not-an-npz", _text, r"not a readable \.npz"),
]


@table(CACHE_CASES)
def test_damaged_cache_entry_is_quarantined_and_recomputed(case: BadInput, tmp_path, template):
    shutil.copytree(template / "set", tmp_path / "set")
    shutil.copytree(template / "cache", tmp_path / "cache")
    entry = _entry(tmp_path)
    case.extra["damage"](entry)
    before = snapshot(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cli(stats_argv(tmp_path, tmp_path / "set"))
    assert "Traceback" not in result.stderr and result.code == 0, result.stderr
    notes = [str(w.message) for w in caught if issubclass(w.category, FeatureCacheWarning)]
    assert len(notes) == 1, notes
    assert "\n" not in notes[0] and str(entry) in notes[0], notes[0]
    assert re.search(case.expect, notes[0]), f"{notes[0]!r} !~ {case.expect!r}"
    new = {p for p in snapshot(tmp_path) - before if not re.search(case.allowed_new, p)}
    assert new == {"out.npz"}, new
    (moved,) = (tmp_path / "cache" / "quarantine").iterdir()
    assert str(moved) in notes[0] and moved.name.startswith(entry.stem)
    # The answer is the first run's, and the rewritten entry is trusted by the next run.
    ref, got = Statistics.load(template / "ref.npz"), Statistics.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(got.mu, ref.mu)
    np.testing.assert_array_equal(got.sigma, ref.sigma)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_cli(stats_argv(tmp_path, tmp_path / "set")).code == 0
    assert not [w for w in caught if issubclass(w.category, FeatureCacheWarning)]


# ---------------------------------------------------------------------------------------------
# Bombs cost (almost) nothing; Pillow's global is left as it was

_MEASURE = """
import resource, sys
from fidlens.data.datasets import open_image_source
from fidlens.core.errors import DatasetError
source = open_image_source(sys.argv[1])
try:
    source[len(source) - 1]
    outcome = "decoded"
except DatasetError as exc:
    outcome = "refused: " + str(exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print(outcome)
"""


def _peak_mib(dataset: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_MAX_BYTES, ENV_MAX_PIXELS)}
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(dataset)], capture_output=True, text=True, env=env,
                          timeout=300, check=True)
    peak, outcome = done.stdout.strip().splitlines()
    return int(peak), outcome


def test_bombs_are_refused_before_they_cost_memory(tmp_path):
    baseline, outcome = _peak_mib(write_clean_set(tmp_path / "good"))
    assert outcome == "decoded"
    png = set_with(tmp_path, "img001.png", png_bomb(9400, 9400))  # 265 MB of RGB once decoded
    zipped = raw_zip(tmp_path / "bomb.zip", [*clean_members()[:-1], zip_bomb_member()])  # 1.5 GiB inflated
    for dataset in (png, zipped):
        peak, outcome = _peak_mib(dataset)
        assert outcome.startswith("refused: ") and "above the limit" in outcome, outcome
        assert peak - baseline < 64, f"{dataset.name}: peak {peak} MiB vs {baseline} MiB decoding a good set"


def test_fidlens_limit_decides_and_pillow_global_is_restored(monkeypatch):
    from fidlens.data.datasets import DecodeLimits, decode_image
    from fidlens.core.errors import DatasetError

    data = encode(clean_images()[0], "PNG")  # 576 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse it (> 2 x 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = decode_image(data, "a.png", "set", limits=DecodeLimits(max_pixels=1000))
    np.testing.assert_array_equal(out, clean_images()[0])
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(DatasetError, match=r"a\.png in set is 24x24 = 0\.0 megapixels"):
        decode_image(data, "a.png", "set", limits=DecodeLimits(max_pixels=500))
    assert Image.MAX_IMAGE_PIXELS == 100
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("bad", [0, -5, "ten", 2.5, True])
def test_limits_must_be_positive_whole_numbers(bad):
    from fidlens.data.datasets import DecodeLimits
    from fidlens.core.errors import DatasetError

    with pytest.raises(DatasetError, match="whole number"):
        DecodeLimits(max_pixels=bad)
