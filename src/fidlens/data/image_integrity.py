"""Structural checks of PNG and JPEG files, so a damaged image is refused instead of half-decoded.

Pillow decodes some damaged files without a word: a PNG whose chunk checksums are wrong or whose
end is missing (when the pixel data happens to be complete), a JPEG whose scan data was cut and
closed with an end-of-image marker, or whose restart markers are missing.  A measurement tool
should not average over such an image, so `structure_problem` looks at the container first:

* PNG: every chunk must fit in the file and carry a correct CRC-32, and the file must reach IEND.
* JPEG: the segments must be well formed, the file must reach its end-of-image marker, nothing but
  stuffed bytes and restart markers (in order) may appear inside scan data, and a scan with a
  restart interval must hold the number of restart markers its size requires.

JPEG has no checksum: a flipped bit inside the entropy-coded data that keeps this structure intact
cannot be seen without decoding the Huffman stream, and is not caught here.  Other formats are left
to Pillow (which refuses truncated files, as `ImageFile.LOAD_TRUNCATED_IMAGES` stays False).
"""

from __future__ import annotations

import math
import re
import zlib

__all__ = ["jpeg_problem", "png_problem", "structure_problem"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"

# Start-of-frame markers; the lossless ones (C3, C7, CB, CF) count restart intervals in samples.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_LOSSLESS_SOF = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
# Markers followed by a two-byte length: SOFn, DHT, JPG, DAC, SOS, DQT, DNL, DRI, DHP, EXP,
# APPn, JPGn and COM.
_SEGMENT_MARKERS = frozenset(range(0xC0, 0xD0)) | frozenset(range(0xDA, 0xE0)) | frozenset(range(0xE0, 0xFF))
# Markers that may follow a scan: EOI, SOS, DHT, DQT, DRI, DAC, DNL, APPn and COM.
_AFTER_SCAN = frozenset({0xD9, 0xDA, 0xC4, 0xDB, 0xDD, 0xCC, 0xDC, 0xFE}) | frozenset(range(0xE0, 0xF0))
# Inside scan data: one or more 0xFF, then a byte that is neither a stuffed zero nor fill.
_SCAN_MARKER = re.compile(rb"\xff+[^\x00\xff]")


def structure_problem(data: bytes) -> str | None:
    """Why `data` is a damaged PNG or JPEG, or None (also None for every other format)."""
    if data.startswith(PNG_SIGNATURE):
        return png_problem(data)
    if data.startswith(_JPEG_SOI):
        return jpeg_problem(data)
    return None


def png_problem(data: bytes) -> str | None:
    """Why the PNG in `data` is truncated or damaged, or None when every chunk checks out."""
    view = memoryview(data)
    n = len(data)
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > n:
            return "PNG ends before its IEND chunk (the file is truncated)"
        length = int.from_bytes(view[pos : pos + 4], "big")
        ctype = bytes(view[pos + 4 : pos + 8])
        if not ctype.isalpha():
            return f"PNG has an invalid chunk type {ctype!r} at byte {pos} (the file is damaged)"
        name = ctype.decode("ascii")
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            return f"PNG chunk {name} at byte {pos} runs past the end of the file (the file is truncated)"
        stored = int.from_bytes(view[end - 4 : end], "big")
        if zlib.crc32(view[pos + 4 : end - 4]) != stored:
            return f"PNG chunk {name} at byte {pos} has a bad CRC (the file is damaged)"
        if ctype == b"IEND":
            return None
        pos = end


def _scan_mcus(frame: dict, scan_components: list[int]) -> int | None:
    """Number of MCUs in a scan over `scan_components`, or None when it cannot be known."""
    height, width, sampling = frame["height"], frame["width"], frame["sampling"]
    if height == 0 or width == 0 or frame["lossless"]:
        return None  # height given later by DNL, or restart intervals counted in samples
    h_max = max(h for h, _ in sampling.values())
    v_max = max(v for _, v in sampling.values())
    if len(scan_components) == 1:
        h, v = sampling[scan_components[0]]
        comp_w = math.ceil(width * h / h_max)
        comp_h = math.ceil(height * v / v_max)
        return math.ceil(comp_w / 8) * math.ceil(comp_h / 8)
    return math.ceil(width / (8 * h_max)) * math.ceil(height / (8 * v_max))


def _parse_frame(segment: bytes, marker: int) -> dict | str:
    if len(segment) < 6:
        return "JPEG frame header is too short (the file is damaged)"
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    count = segment[5]
    if count == 0 or len(segment) < 6 + 3 * count:
        return "JPEG frame header lists no or too few components (the file is damaged)"
    sampling = {}
    for k in range(count):
        ident, hv = segment[6 + 3 * k], segment[7 + 3 * k]
        h, v = hv >> 4, hv & 0x0F
        if not (1 <= h <= 4 and 1 <= v <= 4):
            return f"JPEG component {ident} has an invalid sampling factor {h}x{v} (the file is damaged)"
        sampling[ident] = (h, v)
    return {"height": height, "width": width, "sampling": sampling, "lossless": marker in _LOSSLESS_SOF}


def _check_scan(data: bytes, pos: int, frame: dict, components: list[int], restart: int, number: int) -> tuple[int, str | None]:
    """Walk one scan's entropy-coded data from `pos`; return where its closing marker starts."""
    count = 0
    for match in _SCAN_MARKER.finditer(data, pos):
        code = data[match.end() - 1]
        if 0xD0 <= code <= 0xD7:
            if code - 0xD0 != count % 8:
                return match.start(), (
                    f"JPEG scan {number} has restart marker RST{code - 0xD0} where RST{count % 8} belongs "
                    "(the image data is damaged)"
                )
            count += 1
            continue
        if restart > 0:
            mcus = _scan_mcus(frame, components)
            if mcus is not None and count < math.ceil(mcus / restart) - 1:
                expected = math.ceil(mcus / restart) - 1
                return match.start(), (
                    f"JPEG scan {number} holds {count} of its {expected} restart markers "
                    "(the image data is truncated or damaged)"
                )
        return match.start(), None
    return len(data), "JPEG ends inside its image data, before the end-of-image marker (the file is truncated)"


def jpeg_problem(data: bytes) -> str | None:
    """Why the JPEG in `data` is truncated or damaged, or None when its structure checks out."""
    n = len(data)
    pos = 2
    frame: dict | None = None
    restart = 0
    scans = 0
    after_scan = False
    while True:
        nxt = data.find(b"\xff", pos)  # stray bytes between segments are tolerated, as libjpeg does
        if nxt < 0:
            return "JPEG ends before its end-of-image marker (the file is truncated)"
        pos = nxt
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            return "JPEG ends before its end-of-image marker (the file is truncated)"
        marker = data[pos]
        at = pos - 1
        pos += 1
        if after_scan and marker not in _AFTER_SCAN:
            return f"JPEG has an unexpected marker 0xFF{marker:02X} in its image data at byte {at} (the image data is damaged)"
        after_scan = False
        if marker == 0xD9:
            return None if scans else "JPEG has no image data (end-of-image marker before any scan)"
        if marker == 0x01:  # TEM: stands alone
            continue
        if marker not in _SEGMENT_MARKERS:
            return f"JPEG has an unexpected marker 0xFF{marker:02X} at byte {at} (the file is damaged)"
        if pos + 2 > n:
            return "JPEG ends inside a segment header (the file is truncated)"
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            return f"JPEG segment 0xFF{marker:02X} at byte {at} runs past the end of the file (the file is truncated or damaged)"
        segment = data[pos + 2 : pos + length]
        pos += length
        if marker in _SOF_MARKERS:
            parsed = _parse_frame(segment, marker)
            if isinstance(parsed, str):
                return parsed
            frame = parsed
        elif marker == 0xDD:
            restart = int.from_bytes(segment[:2], "big") if len(segment) >= 2 else 0
        elif marker == 0xDA:
            scans += 1
            if frame is None:
                return "JPEG has a scan before its frame header (the file is damaged)"
            count = segment[0] if segment else 0
            components = [segment[1 + 2 * k] for k in range(count) if 1 + 2 * k < len(segment)]
            unknown = [c for c in components if c not in frame["sampling"]]
            if count == 0 or len(components) != count or unknown:
                return f"JPEG scan {scans} names components the frame does not have (the file is damaged)"
            pos, problem = _check_scan(data, pos, frame, components, restart, scans)
            if problem:
                return problem
            after_scan = True
