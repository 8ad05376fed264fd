"""Glue for the Snakefile and its scripts: config checks, logs and threads, so each stays a few lines.

torch is imported only by the scripts that use it (a manifest or table job should not pay for it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def logged(log_path: str | os.PathLike | None, threads: int | None = None) -> Iterator[None]:
    """Send stdout, stderr (progress bars included) and warnings of a rule to its log file."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, force=True)
        logging.captureWarnings(True)
        start = time.time()
        torch = sys.modules.get("torch")
        print(f"fidlens: {' '.join(sys.argv[:1])} threads={torch.get_num_threads() if torch else 1}")
        try:
            yield
        except BaseException as exc:
            print(f"error: {exc}")
            raise
        finally:
            print(f"fidlens: finished in {time.time() - start:.1f} s")


def _key(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def schema_problem(config: Mapping[str, Any], schema_path: str | os.PathLike) -> str | None:
    """The most relevant schema violation of CONFIG as one line naming its key, or None.

    Snakemake's own `validate` (still run afterwards, it fills in the defaults) prints the whole
    schema node across a dozen lines; this says which key, which value, and what is allowed.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is None:
        return None
    described = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    # A pattern alone reads badly; the key's description says in words what it accepts.
    hint = f" ({' '.join(str(described).split())})" if described and error.validator == "pattern" else ""
    return f"config {_key(error.absolute_path)}: {error.message}{hint}"


def image_set_names(config: Mapping[str, Any]) -> set[str]:
    """Every image set a config can name: its datasets, and the demo sets the demo rules build."""
    distortions = config["demo"]["distortions"]
    demo = {"reference", "comparison"} | {f"{kind}{i}" for kind, levels in distortions.items()
                                         for i in range(1, len(levels) + 1)}
    return set(config.get("datasets", {})) | demo


def demo_problem(config: Mapping[str, Any]) -> str | None:
    """A demo setting no job could honour (a reversed subject range, a strip face not compared)."""
    demo = config["demo"]
    for split in ("reference_subjects", "comparison_subjects"):
        first, last = demo[split]
        if first > last:
            return f"config demo.{split}: the first subject ({first}) comes after the last ({last})"
    face_subject = int(demo["sample_face"][1:3])
    first, last = demo["comparison_subjects"]
    if demo["enabled"] and not first <= face_subject <= last:
        return (f"config demo.sample_face: {demo['sample_face']!r} is not in the comparison set "
                f"(subjects {first}-{last})")
    return None


def _unknown(key: str, name: str, known: set[str], what: str) -> str:
    choices = ", ".join(sorted(known)) or "none configured"
    return f"config {key}: {name!r} is not a known {what} ({choices})"


def entry_problem(config: Mapping[str, Any], section: str, name: str) -> str | None:
    """A name in the config entry SECTION.NAME that points at nothing (an image set, a generator).

    Checked where the workflow uses the entry, so a study the requested targets do not need may
    stay half-edited; without the check the name fails while Snakemake builds the DAG, as a
    KeyError inside an input function or a missing results/data folder no rule can build.
    """
    sets, generators = image_set_names(config), set(config.get("generators", {}))
    entry = config[section][name]
    key = f"{section}.{name}"
    if section == "generators" and entry["network"] == "ppca-demo" and entry["fit_on"] not in sets:
        return _unknown(f"{key}.fit_on", entry["fit_on"], sets, "image set")
    if section == "heatmaps" and name not in generators:
        return _unknown(key, name, generators, "generator")
    if section == "resampling":
        for i, pool in enumerate([entry["reals"], *entry.get("pool", [])]):
            if pool not in sets:
                return _unknown(f"{key}." + ("reals" if i == 0 else "pool"), pool, sets, "image set")
        spec = entry.get("generator")
        if spec and spec["name"] not in generators:
            return _unknown(f"{key}.generator.name", spec["name"], generators, "generator")
        if not spec and not entry.get("pool"):
            return f"config {key}: give a candidate pool (pool: [datasets]) or a generator"
    if section == "pairs" and entry["generator"] not in generators:
        return _unknown(f"{key}.generator", entry["generator"], generators, "generator")
    if section in ("heatmaps", "pairs") and entry["reference"] not in sets:
        return _unknown(f"{key}.reference", entry["reference"], sets, "image set")
    return None


def refuse(problem: str) -> None:
    """End a Snakemake run before any job, the way the CLI does: one `error:` line, exit status 2."""
    print(f"error: {problem}", file=sys.stderr)
    raise SystemExit(2)
