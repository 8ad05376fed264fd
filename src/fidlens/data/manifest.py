"""Content manifests of image sets, so the workflow reruns a job when an image's bytes change.

Snakemake decides what to rerun from file mtimes (plus params, code, input sets), and a folder's
mtime does not move when a file inside it is rewritten. So every image set the workflow reads gets
a manifest, ``results/manifests/NAME.json``: the sorted names, sizes and sha256 of exactly the
files fidlens reads from it (the images of a folder, or the whole ZIP). The manifest is a declared
input of the jobs that read the set. While Snakemake builds the DAG the workflow calls
`refresh_manifest`, which rewrites the manifest only when the content differs: its mtime moves on a
real change, and never otherwise ("Nothing to be done" stays true).

Cost and promise. Hashing reads every byte once: about 1-2 s per GB (a 70,000-image FFHQ ZIP of
90 GB takes minutes, once). A stamp cache beside the manifest (``.stamps/NAME.json``: per file
size, mtime_ns, ctime_ns and inode -> sha256) spares re-reading unchanged files, so refreshing
70,000 unchanged files costs 70,000 `stat` calls (well under a second). The stamp holds the ctime
because the kernel sets it on every write and no unprivileged call can set it back: an edit that
restores the old mtime with `os.utime` is still seen. Not seen: a same-size rewrite within the
ctime clock's granularity (a few ms) of the moment the file was hashed, or on a file system that
keeps no ctime. Delete the ``.stamps`` file (or the manifest) to force a full re-hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fidlens.core.atomic import write_text_atomic
from fidlens.data.datasets import FolderImageSource
from fidlens.core.errors import DatasetError

FORMAT = "fidlens-image-manifest/1"
_STAMPS_FORMAT = "fidlens-manifest-stamps/1"

Stamp = tuple[int, int, int, int]


def stamps_path(manifest: str | os.PathLike) -> Path:
    """Where the stamp cache of a manifest lives (not a declared input: it may change freely)."""
    manifest = Path(manifest)
    return manifest.parent / ".stamps" / manifest.name


def _members(source: Path) -> list[tuple[str, Path]]:
    """The files fidlens reads from SOURCE: a folder's images (its own listing rules), or a ZIP itself."""
    if source.is_dir():
        return [(name, source / name) for name in FolderImageSource(source).names]
    if source.is_file() and source.suffix.lower() == ".zip":
        return [(source.name, source)]
    if source.exists():
        raise DatasetError(f"{source} is neither a folder of images nor a .zip file")
    raise DatasetError(f"image set {source} does not exist")


def check_source(source: str | os.PathLike) -> int:
    """Number of files SOURCE's manifest will cover; a cheap listing (no reading) that refuses bad sets early."""
    return len(_members(Path(source)))


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _load_stamps(path: Path) -> dict[str, tuple[Stamp, str]]:
    """The stamp cache, or nothing when it is missing or damaged (then every file is re-hashed)."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _STAMPS_FORMAT:
            return {}
        return {name: (tuple(int(x) for x in stamp), str(sha)) for name, (stamp, sha) in data["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def scan(source: str | os.PathLike, stamps: dict[str, tuple[Stamp, str]] | None = None
         ) -> tuple[dict[str, Any], dict[str, tuple[Stamp, str]]]:
    """The manifest content of SOURCE and the fresh stamp cache; files whose stamp matches are not read."""
    source = Path(source)
    stamps = stamps or {}
    entries, fresh = [], {}
    for name, path in _members(source):
        try:
            stamp = _stamp(os.stat(path))
            cached = stamps.get(name)
            # The stamp is taken before reading: a write during the read moves the ctime, so the
            # next scan re-hashes the file instead of trusting a digest of half-old bytes.
            sha = cached[1] if cached and cached[0] == stamp else _sha256(path)
        except OSError as exc:
            raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
        entries.append([name, stamp[0], sha])
        fresh[name] = (stamp, sha)
    listing = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    content = {"format": FORMAT, "kind": "folder" if source.is_dir() else "file", "num_files": len(entries),
               "total_bytes": sum(e[1] for e in entries), "sha256": listing, "files": entries}
    return content, fresh


def render(content: dict[str, Any]) -> str:
    """JSON with one file per line: readable, diffable, and byte-identical for identical content."""
    head = json.dumps({k: v for k, v in content.items() if k != "files"})[:-1]
    files = ",\n ".join(json.dumps(entry) for entry in content["files"])
    return f'{head}, "files": [\n {files}\n]}}\n'


def _save_stamps(path: Path, stamps: dict[str, tuple[Stamp, str]]) -> None:
    files = {name: [list(stamp), sha] for name, (stamp, sha) in stamps.items()}
    write_text_atomic(path, json.dumps({"format": _STAMPS_FORMAT, "files": files}) + "\n")


def write_manifest(source: str | os.PathLike, manifest: str | os.PathLike) -> dict[str, Any]:
    """Write SOURCE's manifest (atomically) and its stamp cache; the workflow's manifest job."""
    cache = stamps_path(manifest)
    content, fresh = scan(source, _load_stamps(cache))
    write_text_atomic(manifest, render(content))
    _save_stamps(cache, fresh)
    return content


def refresh_manifest(source: str | os.PathLike, manifest: str | os.PathLike) -> bool:
    """Rewrite an existing manifest only if SOURCE's content changed; True when it was rewritten.

    The stamp cache is rewritten whenever a stamp moved (a touch, a copy), the manifest only on
    a change of names, sizes or bytes, so only real changes move the manifest's mtime.
    """
    manifest = Path(manifest)
    cache = stamps_path(manifest)
    old_stamps = _load_stamps(cache)
    content, fresh = scan(source, old_stamps)
    if fresh != old_stamps:
        _save_stamps(cache, fresh)
    text = render(content)
    try:
        unchanged = manifest.read_text() == text
    except (OSError, UnicodeDecodeError):
        unchanged = False
    if not unchanged:
        write_text_atomic(manifest, text)
    return not unchanged
