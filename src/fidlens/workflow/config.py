"""The workflow's config: checked against config/schema.yaml, defaults filled in, names resolved.

A config file names only what it runs: every key it leaves out takes the schema's default, and
the defaults run nothing (no demo, no study). Problems come back as one line naming the key
(`config device: ...`), the way the CLI reports them, instead of Snakemake's schema dump.
Pure Python (jsonschema and PyYAML): the tests and the docs scripts load configs the same way
the Snakefile does.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from fidlens.core.errors import FidlensError

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
SCHEMA = CONFIG_DIR / "schema.yaml"
DEMO_CONFIG = CONFIG_DIR / "demo.yaml"  # what `snakemake` runs when no --configfile is given
# The one key kept for old configs: `inception_weights: X` means `detector: {name: inception, weights: X}`.
LEGACY_WEIGHTS_KEY = "inception_weights"


class ConfigError(FidlensError):
    """A config value no job could honour; its message is one line that starts with `config KEY`."""


def _key(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _schema(schema_path: str | os.PathLike) -> dict:
    import yaml

    return yaml.safe_load(Path(schema_path).read_text())


def schema_problem(config: Mapping[str, Any], schema_path: str | os.PathLike = SCHEMA) -> str | None:
    """The most relevant schema violation of CONFIG as one line naming its key, or None.

    Snakemake's own `validate` prints the whole schema node across a dozen lines; this says which
    key, which value, and what is allowed.
    """
    import jsonschema

    schema = _schema(schema_path)
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is None:
        return None
    described = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    # A pattern alone reads badly; the key's description says in words what it accepts.
    hint = f" ({' '.join(str(described).split())})" if described and error.validator == "pattern" else ""
    return f"config {_key(error.absolute_path)}: {error.message}{hint}"


def fill_defaults(config: MutableMapping[str, Any], schema_path: str | os.PathLike = SCHEMA) -> None:
    """Give every key CONFIG leaves out the schema's default, in place, at every depth.

    Defaults are copied, so two entries never share one list. Run after `schema_problem` found
    nothing: a value of the wrong type is not descended into.
    """
    import jsonschema

    schema = _schema(schema_path)
    base = jsonschema.validators.validator_for(schema)
    check_properties = base.VALIDATORS["properties"]

    def properties(validator: Any, props: Mapping[str, Any], instance: Any, node: Any) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, Mapping) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, node)

    filler = jsonschema.validators.extend(base, {"properties": properties})
    for _ in filler(schema).iter_errors(config):
        pass  # schema_problem reports errors; this pass only fills


def legacy_weights_note(config: MutableMapping[str, Any]) -> str | None:
    """Turn the deprecated `inception_weights: X` into `detector: {name: inception, weights: X}`.

    Returns the one-line deprecation note to show, or None when the key is absent. Giving both
    keys is refused: which one would win is a guess.
    """
    if LEGACY_WEIGHTS_KEY not in config:
        return None
    value = config.pop(LEGACY_WEIGHTS_KEY)
    if "detector" in config:
        raise ConfigError(f"config {LEGACY_WEIGHTS_KEY}: give either detector (name, weights) or the deprecated "
                          f"{LEGACY_WEIGHTS_KEY}, not both")
    config["detector"] = {"name": "inception", "weights": value}
    return (f"note: config {LEGACY_WEIGHTS_KEY} is deprecated; write detector: {{name: inception, weights: {value}}} "
            "instead")


def prepare(config: MutableMapping[str, Any], schema_path: str | os.PathLike = SCHEMA) -> list[str]:
    """Check CONFIG, rewrite the deprecated key and fill the defaults, in place; return notes to show.

    Raises `ConfigError` (one line) for the first problem: a schema violation or a demo setting
    no job could honour. Entries that name other entries are checked later, where a target needs
    them (`entry_problem`), so a half-edited study does not block the rest.
    """
    problem = schema_problem(config, schema_path)
    if problem:
        raise ConfigError(problem)
    note = legacy_weights_note(config)
    fill_defaults(config, schema_path)
    problem = demo_problem(config)
    if problem:
        raise ConfigError(problem)
    return [note] if note else []


def load_config(path: str | os.PathLike, schema_path: str | os.PathLike = SCHEMA) -> dict[str, Any]:
    """A config file as the workflow sees it: checked, defaults filled (for tests and docs scripts)."""
    import yaml

    config = yaml.safe_load(Path(path).read_text()) or {}
    prepare(config, schema_path)
    return config


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


def unknown(key: str, name: str, known: set[str], what: str) -> str:
    """The one line for a name that points at nothing, listing what it could have named."""
    choices = ", ".join(sorted(known)) or "none configured"
    return f"config {key}: {name!r} is not a known {what} ({choices})"


def entry_problem(config: Mapping[str, Any], section: str, name: str) -> str | None:
    """A name in the config entry SECTION.NAME that points at nothing (an image set, a generator).

    Checked where the workflow uses the entry, so a study the requested targets do not need may
    stay half-edited; without the check the name fails while Snakemake builds the DAG, as a
    KeyError inside an input function or a missing data folder no rule can build.
    """
    sets, generators = image_set_names(config), set(config.get("generators", {}))
    entry = config[section][name]
    key = f"{section}.{name}"
    if section == "generators" and entry["network"] == "ppca-demo" and entry["fit_on"] not in sets:
        return unknown(f"{key}.fit_on", entry["fit_on"], sets, "image set")
    if section == "heatmaps" and name not in generators:
        return unknown(key, name, generators, "generator")
    if section == "resampling":
        for i, pool in enumerate([entry["reals"], *entry.get("pool", [])]):
            if pool not in sets:
                return unknown(f"{key}." + ("reals" if i == 0 else "pool"), pool, sets, "image set")
        spec = entry.get("generator")
        if spec and spec["name"] not in generators:
            return unknown(f"{key}.generator.name", spec["name"], generators, "generator")
        if not spec and not entry.get("pool"):
            return f"config {key}: give a candidate pool (pool: [datasets]) or a generator"
    if section == "pairs" and entry["generator"] not in generators:
        return unknown(f"{key}.generator", entry["generator"], generators, "generator")
    if section in ("heatmaps", "pairs") and entry["reference"] not in sets:
        return unknown(f"{key}.reference", entry["reference"], sets, "image set")
    return None


def refuse(problem: str) -> None:
    """End a Snakemake run before any job, the way the CLI does: one `error:` line, exit status 2."""
    print(f"error: {problem}", file=sys.stderr)
    raise SystemExit(2)
