"""The README's table of configuration keys, drawn from config/schema.yaml so the two cannot drift.

``python -m fidlens.workflow.config_docs`` prints the table; a test checks the README holds it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


def _type(spec: dict) -> str:
    kind = spec.get("type", "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if "enum" in spec:
        kind += " (" + " / ".join(map(str, spec["enum"])) + ")"
    return kind


def _default(spec: dict) -> str:
    if "default" not in spec or spec["default"] in ({}, []):
        return ""
    return f"`{json.dumps(spec['default'], ensure_ascii=False)}`"


def schema_rows(spec: dict, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key path, type, default, description) for every key; NAME stands for user-chosen names."""
    for key, sub in spec.get("properties", {}).items():
        path = f"{prefix}{key}"
        yield path, _type(sub), _default(sub), " ".join(str(sub.get("description", "")).split())
        yield from schema_rows(sub, f"{path}.")
    extra = spec.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("properties"):
        yield from schema_rows(extra, f"{prefix}NAME.")


def markdown_table(schema_path: str | Path = SCHEMA) -> str:
    schema = yaml.safe_load(Path(schema_path).read_text())
    lines = ["| key | type | default | what it sets |", "|---|---|---|---|"]
    for path, kind, default, description in schema_rows(schema):
        lines.append(f"| `{path}` | {kind} | {default} | {description.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table(sys.argv[1] if len(sys.argv) > 1 else SCHEMA))
