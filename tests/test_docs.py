"""The README documents the config the schema defines, key by key."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from fidlens.workflow.config_docs import markdown_table, schema_rows


def test_readme_holds_the_current_table_of_config_keys():
    table = markdown_table()
    assert table in (REPO / "README.md").read_text(), "regenerate with: python -m fidlens.workflow.config_docs"


def test_every_config_key_is_described():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    rows = list(schema_rows(schema))
    assert len(rows) > 50
    assert not [path for path, _, _, description in rows if not description]
    for config in ("demo.yaml", "paper.yaml", "config.yaml"):
        used = yaml.safe_load((REPO / "config" / config).read_text())
        documented = {path.split(".")[0] for path, *_ in rows}
        assert set(used) <= documented, config


def test_readme_starts_with_the_two_commands_ci_runs():
    head = (REPO / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in head) and any(line.startswith("make test") for line in head)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_number_blocks_are_rendered_from_the_recorded_runs():
    from fidlens.workflow.readme_numbers import blocks_in, load_snapshot, rendered_blocks

    text = (REPO / "README.md").read_text()
    expected = rendered_blocks(load_snapshot())
    found = blocks_in(text)
    assert set(found) == set(expected), "README must hold every numbers block"
    for name, body in expected.items():
        assert found[name] == body, f"README block {name} is stale: run `make readme-numbers`"


def test_readme_number_blocks_are_replaced_whole():
    from fidlens.workflow.readme_numbers import apply_blocks, blocks_in

    text = "a\n<!-- numbers:x -->\nold\n<!-- /numbers:x -->\nb\n"
    new = apply_blocks(text, {"x": "new 1\nnew 2\n"})
    assert blocks_in(new) == {"x": "new 1\nnew 2\n"} and new.startswith("a\n") and new.endswith("b\n")
    with pytest.raises(ValueError):
        apply_blocks(text, {"y": "z\n"})
