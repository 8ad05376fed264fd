"""The README's images (docs/*.png) are what the current code draws: `make docs-figures` regenerates
them and records, per image, the sha256 of the image and of every source file that draws it."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import REPO

DOCS = REPO / "docs"
RECORD = DOCS / "figures.json"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record() -> dict:
    def refuse(token):
        raise ValueError(f"docs/figures.json is not strict JSON ({token})")

    return json.loads(RECORD.read_text(), parse_constant=refuse)


def _stale(code: dict[str, str], root) -> list[str]:
    """The recorded source files that are gone or differ from their recorded sha256."""
    return [path for path, digest in code.items() if not (root / path).is_file() or _sha256(root / path) != digest]


def test_every_docs_image_is_recorded_and_every_record_has_its_image():
    recorded = set(_record())
    on_disk = {p.name for p in DOCS.glob("*.png")}
    assert on_disk == recorded, "run `make docs-figures` (docs images and docs/figures.json disagree)"


def test_readme_images_exist_and_are_recorded():
    import re

    used = set(re.findall(r"\]\(docs/([^)]+\.png)\)", (REPO / "README.md").read_text()))
    assert used and used <= set(_record())


@pytest.mark.parametrize("name", sorted(_record()) if RECORD.is_file() else ["figures.json missing"])
def test_docs_image_is_not_stale(name):
    assert RECORD.is_file(), "docs/figures.json is missing: run `make docs-figures`"
    item = _record()[name]
    assert _sha256(DOCS / name) == item["sha256"], f"docs/{name} was changed by hand: run `make docs-figures`"
    assert item["code"], f"docs/{name} names no drawing code"
    changed = _stale(item["code"], REPO)
    assert not changed, f"docs/{name} is stale: {', '.join(changed)} changed since it was drawn; run `make docs-figures`"


def test_a_changed_or_missing_drawing_file_is_detected(tmp_path):
    """The check itself can fail: an edited or deleted source file is reported, an untouched one is not."""
    for name in ("draw.py", "script.py", "gone.py"):
        (tmp_path / name).write_text(f"# {name}\n")
    code = {name: _sha256(tmp_path / name) for name in ("draw.py", "script.py", "gone.py")}
    assert _stale(code, tmp_path) == []
    (tmp_path / "draw.py").write_text("# draw.py, edited\n")
    (tmp_path / "gone.py").unlink()
    assert _stale(code, tmp_path) == ["draw.py", "gone.py"]
