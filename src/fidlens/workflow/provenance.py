"""Provenance records: a small JSON beside every table and figure the workflow makes.

``<output>.provenance.json`` says what produced ``<output>``: the rule, its params (the slice of
the config the rule used), wildcards, every input with its size and sha256, package versions,
the device, the platform, the UTC time and the workflow's git commit. Scripts call
`record_job_provenance(snakemake)` after their ``main(...)``; everything else here takes plain
arguments so it can be tested without Snakemake.

Hashing: files up to `HASH_LIMIT` bytes are hashed in full. A larger file gets the digest of
its trust-on-first-download record (``<file>.sha256.json``, written by the download rules) when
that record's size matches, else the pinned sha256 of the `fidlens.assets.registry` entry whose
target it is, else only its size and a note that it was not hashed. Directories are summarised
by their file count and total size.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fidlens.assets.store import file_sha256
from fidlens.core.atomic import atomic_path

__all__ = [
    "HASH_LIMIT",
    "PROVENANCE_SUFFIX",
    "RECORDED_SUFFIXES",
    "describe_path",
    "device_info",
    "git_commit",
    "jsonable",
    "package_versions",
    "provenance_path",
    "provenance_record",
    "record_job_provenance",
    "record_provenance",
    "write_provenance",
]

HASH_LIMIT = 256 * 1024**2  # bytes: larger files are not read in full
PROVENANCE_SUFFIX = ".provenance.json"
# Outputs that are tables, figures or reports get a record; data files (.npz, .pt, .zip) do not.
RECORDED_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".csv", ".tsv", ".md", ".html")
SCHEMA = "fidlens-provenance/1"

# distribution names (importlib.metadata) per reported package; the first one installed wins
_PACKAGES: dict[str, tuple[str, ...]] = {
    "fidlens": ("fidlens",),
    "torch": ("torch",),
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "pillow": ("pillow", "Pillow"),
    "matplotlib": ("matplotlib",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
               "opencv-contrib-python"),
    "snakemake": ("snakemake",),
    "pyyaml": ("pyyaml", "PyYAML"),
}
_IMPORT_NAMES = {"fidlens": "fidlens", "torch": "torch", "numpy": "numpy", "scipy": "scipy",
                 "pillow": "PIL", "matplotlib": "matplotlib", "opencv": "cv2", "snakemake": "snakemake",
                 "pyyaml": "yaml"}


# --- JSON-safe values ---------------------------------------------------------------------------

def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: paths and odd objects become strings, tuples and sets lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if _is_namedlist(value):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [jsonable(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        return jsonable(value.tolist())
    if isinstance(value, bytes):
        return value.hex()
    if callable(value):
        return f"<callable {getattr(value, '__qualname__', type(value).__name__)}>"
    return str(value)


def _is_namedlist(value: Any) -> bool:
    """A Snakemake Namedlist with names (params, wildcards): a list that also has items()."""
    return isinstance(value, list) and callable(getattr(value, "items", None)) and len(value.keys()) > 0


def _named(container: Any) -> dict[str, Any]:
    """A Snakemake Namedlist (params, wildcards), a mapping, or a plain object, as a dict."""
    if container is None:
        return {}
    if isinstance(container, Mapping):
        return dict(container)
    if hasattr(container, "items") and callable(container.items):
        named = dict(container.items())
        if isinstance(container, list) and not named and len(container):
            return {"positional": list(container)}
        return named
    if isinstance(container, (list, tuple)):
        return {"positional": list(container)} if container else {}
    if hasattr(container, "__dict__"):
        return {k: v for k, v in vars(container).items() if not k.startswith("_")}
    return {}


# --- files -------------------------------------------------------------------------------------

def _limit_text(limit: int) -> str:
    mib = 1024**2
    return f"{limit // mib} MB" if limit >= mib and limit % mib == 0 else f"{limit} bytes"


def _large_file_digest(path: Path, size: int, hash_limit: int) -> tuple[str | None, str]:
    """(sha256 or None, where it came from) for a file too large to hash here."""
    from fidlens.assets.registry import asset_for_target, read_record, record_path
    from fidlens.core.errors import AssetError

    problem = None
    try:
        record = read_record(path)
    except AssetError as exc:
        record, problem = None, str(exc)
    if record is not None:
        recorded_size = record.get("size")
        if recorded_size is None or int(recorded_size) == size:
            return str(record["sha256"]), f"first-download record {record_path(path).name}"
        problem = f"{record_path(path).name} records {recorded_size} bytes but the file has {size}"
    target = path
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        target = path.relative_to(Path.cwd())
    asset = asset_for_target(target)
    if asset is not None and asset.pinned:
        return asset.sha256, f"pinned checksum of asset {asset.name!r} (fidlens.assets.registry)"
    if asset is not None and asset.kind == "network":  # which generator made it: always said (a few s per job)
        from fidlens.assets.registry import network_identity

        identity = network_identity(path)
        return identity["sha256"], f"network file ({identity['sha256_source']})"
    note = f"not hashed: larger than {_limit_text(hash_limit)}"
    return None, note + (f"; {problem}" if problem else "")


def describe_path(path: str | os.PathLike, hash_limit: int = HASH_LIMIT) -> dict[str, Any]:
    """Size and sha256 of a file (see the module text for large files); count and size of a folder."""
    path = Path(path)
    entry: dict[str, Any] = {"path": os.fspath(path)}
    if path.is_dir():
        count, total = 0, 0
        for root, _dirs, files in os.walk(path):
            for name in files:
                if name == ".snakemake_timestamp":  # Snakemake's marker in directory outputs
                    continue
                try:
                    total += (Path(root) / name).stat().st_size
                except OSError:
                    continue
                count += 1
        entry.update(kind="directory", files=count, bytes=total)
        return entry
    if not path.exists():
        entry.update(kind="missing")
        return entry
    size = path.stat().st_size
    entry.update(kind="file", bytes=size)
    if size <= hash_limit:
        entry["sha256"] = file_sha256(path)
        return entry
    digest, source = _large_file_digest(path, size, hash_limit)
    entry["sha256"] = digest
    entry["sha256_source"] = source
    return entry


def _input_groups(inputs: Any) -> list[tuple[str | None, list[str]]]:
    """(name, files) per input: names from a Snakemake Namedlist or a mapping; None when unnamed."""
    if inputs is None:
        return []
    if isinstance(inputs, (str, os.PathLike)):
        return [(None, [os.fspath(inputs)])]
    if isinstance(inputs, Mapping):
        single = lambda value: isinstance(value, (str, os.PathLike))
        return [(str(name), [os.fspath(v) for v in ([value] if single(value) else value)])
                for name, value in inputs.items()]
    files = [os.fspath(f) for f in inputs]
    names = getattr(inputs, "_names", None) or {}
    groups: list[tuple[str | None, list[str]]] = []
    claimed: set[int] = set()
    spans = []
    for name, (start, end) in names.items():
        stop = start + 1 if end is None else end
        spans.append((start, stop, name))
    for start, stop, name in sorted(spans):
        indices = [i for i in range(start, stop) if i not in claimed]
        claimed.update(indices)
        groups.append((name, [files[i] for i in indices]))
    unnamed = [files[i] for i in range(len(files)) if i not in claimed]
    if unnamed:
        groups.append((None, unnamed))
    return groups


def _describe_inputs(inputs: Any, hash_limit: int) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    described = []
    for name, files in _input_groups(inputs):
        for file in files:
            entry = dict(seen[file]) if file in seen else describe_path(file, hash_limit)
            seen.setdefault(file, entry)
            described.append({"name": name, **entry} if name is not None else entry)
    return described


# --- environment -------------------------------------------------------------------------------

def package_versions() -> dict[str, str | None]:
    """Python and the packages that shape the numbers and figures (None: not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, distributions in _PACKAGES.items():
        version = None
        for dist in distributions:
            try:
                version = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        if version is None:
            module = sys.modules.get(_IMPORT_NAMES[key])
            version = getattr(module, "__version__", None) if module is not None else None
        versions[key] = version
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_info() -> dict[str, Any]:
    """The CUDA device when one is visible, else the CPU model; torch's thread count."""
    info: dict[str, Any] = {"cpu": _cpu_model(), "cpu_count": os.cpu_count()}
    try:
        import torch
    except ImportError:
        info.update(kind="cpu", name=info["cpu"], torch_threads=None, cuda_available=False)
        return info
    info["torch_threads"] = torch.get_num_threads()
    cuda = False
    try:
        cuda = bool(torch.cuda.is_available())
    except Exception:  # a broken driver must not break the record
        cuda = False
    info["cuda_available"] = cuda
    if cuda:
        index = torch.cuda.current_device()
        info.update(kind="cuda", name=torch.cuda.get_device_name(index), cuda_device_count=torch.cuda.device_count(),
                    cuda_version=torch.version.cuda)
    else:
        info.update(kind="cpu", name=info["cpu"])
    return info


def git_commit(directory: str | os.PathLike | None) -> dict[str, Any] | None:
    """The HEAD commit of the git checkout holding `directory`, and whether tracked files differ."""
    if directory is None or not Path(directory).is_dir():
        return None

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", os.fspath(directory), *args], capture_output=True, text=True,
                              timeout=20, check=False)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("diff", "--quiet", "HEAD", "--")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": {0: False, 1: True}.get(dirty.returncode)}


# --- records -----------------------------------------------------------------------------------

def provenance_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + PROVENANCE_SUFFIX)


def provenance_record(*, rule: str | None, params: Any = None, wildcards: Any = None, inputs: Any = None,
                      threads: int | None = None, workflow_dir: str | os.PathLike | None = None,
                      hash_limit: int = HASH_LIMIT) -> dict[str, Any]:
    """Everything but the output's own entry: shared by all outputs of one job."""
    git = git_commit(workflow_dir)
    return {
        "schema": SCHEMA,
        "rule": rule,
        "params": jsonable(_named(params)),
        "wildcards": jsonable(_named(wildcards)),
        "threads": threads,
        "inputs": _describe_inputs(inputs, hash_limit),
        "packages": package_versions(),
        "device": device_info(),
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "python_implementation": platform.python_implementation(), "node": platform.node()},
        "time_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "workdir": os.getcwd(),
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
    }


def write_provenance(output: str | os.PathLike, record: Mapping[str, Any],
                     hash_limit: int = HASH_LIMIT) -> Path:
    """Write ``<output>.provenance.json`` atomically: `record` plus the output's own size and sha256."""
    target = provenance_path(output)
    data = {"output": describe_path(output, hash_limit), **record}
    text = json.dumps(jsonable(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def _recorded_outputs(outputs: Iterable[str | os.PathLike], suffixes: tuple[str, ...]) -> list[Path]:
    chosen: list[Path] = []
    for output in outputs:
        path = Path(output)
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            name = candidate.name.lower()
            if name.endswith(PROVENANCE_SUFFIX) or not name.endswith(suffixes) or not candidate.is_file():
                continue
            if candidate not in chosen:
                chosen.append(candidate)
    return chosen


def record_provenance(outputs: Iterable[str | os.PathLike], *, rule: str | None, params: Any = None,
                      wildcards: Any = None, inputs: Any = None, threads: int | None = None,
                      workflow_dir: str | os.PathLike | None = None, hash_limit: int = HASH_LIMIT,
                      suffixes: tuple[str, ...] = RECORDED_SUFFIXES) -> list[Path]:
    """Write a record beside each table/figure among `outputs` (folders: the matching files inside).

    Returns the records written; none (and no hashing) when no output is a table or a figure.
    """
    chosen = _recorded_outputs(outputs, tuple(s.lower() for s in suffixes))
    if not chosen:
        return []
    record = provenance_record(rule=rule, params=params, wildcards=wildcards, inputs=inputs, threads=threads,
                               workflow_dir=workflow_dir, hash_limit=hash_limit)
    return [write_provenance(path, record, hash_limit) for path in chosen]


def record_job_provenance(snakemake: Any, extra: Iterable[str | os.PathLike] = (),
                          hash_limit: int = HASH_LIMIT, *, declared_folders: bool = True) -> list[Path]:
    """`record_provenance` for the running Snakemake job (the ``snakemake`` object of a script).

    `extra`: files or folders the job writes beside its declared outputs (folders: every table
    and figure inside). ``declared_folders=False`` skips declared outputs that are folders (a set
    of images must not gain records among its files). The git commit is that of the checkout
    holding the script.
    """
    declared = [os.fspath(o) for o in list(getattr(snakemake, "output", []) or [])]
    if not declared_folders:
        declared = [o for o in declared if not Path(o).is_dir()]
    outputs = [*declared, *extra]
    scriptdir = getattr(snakemake, "scriptdir", None)
    return record_provenance(
        outputs,
        rule=getattr(snakemake, "rule", None),
        params=getattr(snakemake, "params", None),
        wildcards=getattr(snakemake, "wildcards", None),
        inputs=getattr(snakemake, "input", None),
        threads=getattr(snakemake, "threads", None),
        workflow_dir=scriptdir,
        hash_limit=hash_limit,
    )
