"""A demo run's outputs equal the numbers the README quotes (docs/demo_numbers.json).

Run after `make demo` with `make check-demo` (CI does both), which points FIDLENS_DEMO_RESULTS at
the demo's results folder (`results/demo`, the run of config/demo.yaml). Without it the test is
skipped: a plain `make test` does not run the demo.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from fidlens.workflow.readme_numbers import collect, load_snapshot

RESULTS = os.environ.get("FIDLENS_DEMO_RESULTS")
pytestmark = pytest.mark.skipif(not RESULTS, reason="no demo results named (make demo && make check-demo)")

ROUND_OFF = 1e-6  # relative: the demo runs in float32 networks and float64 statistics on the CPU


def _assert_same(ours, recorded, where: str) -> None:
    if isinstance(recorded, dict):
        assert isinstance(ours, dict) and set(ours) == set(recorded), f"{where}: keys {sorted(ours)} vs {sorted(recorded)}"
        for key in recorded:
            _assert_same(ours[key], recorded[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(ours, list) and len(ours) == len(recorded), f"{where}: length differs"
        for i, (a, b) in enumerate(zip(ours, recorded)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(recorded, float) and isinstance(ours, (int, float)):
        assert math.isclose(ours, recorded, rel_tol=ROUND_OFF, abs_tol=1e-9), f"{where}: {ours} vs {recorded}"
    else:
        assert ours == recorded, f"{where}: {ours!r} vs {recorded!r}"


@pytest.mark.parametrize("part", ["fid_table", "resampling", "pairs", "beyond"])
def test_demo_run_reproduces_the_numbers_the_readme_quotes(part):
    recorded = load_snapshot()
    if part not in recorded:
        pytest.skip(f"docs/demo_numbers.json records no {part} yet (make readme-numbers after a full demo run)")
    ours = collect(Path(RESULTS))
    assert part in ours, f"the demo run produced no {part}"
    _assert_same(ours[part], recorded[part], part)
