"""Strict JSON: NaN and infinities are written as null, and every JSON a run writes parses strictly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fidlens.core.jsonio import dumps_strict, write_json
from fidlens.studies.resampling.modes import Mode
from fidlens.studies.resampling.run import FeatureBank, ResamplingRun, ResamplingSettings, RunInputs


def strict_loads(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, like JavaScript's JSON.parse or jq."""
    return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def strict_parse_all(folder: Path) -> list[Path]:
    """Every *.json and every line of every *.jsonl under folder, parsed strictly; returns the files."""
    files = sorted(folder.rglob("*.json")) + sorted(folder.rglob("*.jsonl"))
    for path in files:
        text = path.read_text()
        chunks = text.splitlines() if path.suffix == ".jsonl" else [text]
        for chunk in chunks:
            try:
                strict_loads(chunk)
            except ValueError as exc:
                raise AssertionError(f"{path.name} is not strict JSON: {exc}") from exc
    return files


def test_the_strict_parser_refuses_what_python_writes_by_default():
    with pytest.raises(ValueError):
        strict_loads(json.dumps({"x": math.nan}))


def test_dumps_strict_writes_null_for_non_finite_and_plain_numbers_for_numpy():
    data = {"nan": math.nan, "inf": np.float64("inf"), "ninf": -math.inf, "n": np.int64(3), "b": np.bool_(True),
            "a": np.array([1.5, np.nan]), "nested": [{"x": np.float32(0.25)}], "t": (1, 2)}
    out = strict_loads(dumps_strict(data))
    assert out == {"nan": None, "inf": None, "ninf": None, "n": 3, "b": True, "a": [1.5, None],
                   "nested": [{"x": 0.25}], "t": [1, 2]}


def test_write_json_is_atomic_and_strict(tmp_path):
    path = tmp_path / "out" / "summary.json"
    write_json(path, {"fid": math.nan, "kid": 1.0})
    assert strict_loads(path.read_text()) == {"fid": None, "kid": 1.0}
    with pytest.raises(TypeError):  # an unserialisable value fails before anything is written
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and not list(tmp_path.glob(".bad.json*"))


def test_every_json_of_a_resampling_run_parses_strictly(tmp_path, rng):
    """CLIP-FID is not computed (NaN in memory): summary.json and log.jsonl say null."""
    reals = FeatureBank(pool3=rng.normal(size=(60, 6)))
    candidates = FeatureBank(pool3=np.concatenate([rng.normal(size=(60, 6)), rng.normal(size=(60, 6)) + 2]),
                             groups=np.array(["clean"] * 60 + ["off"] * 60))
    inputs = RunInputs(Mode("pre_logits"), reals, candidates, clip_skip_reason="CLIP-FID skipped: no weights")
    settings = ResamplingSettings(iterations=4, lr=10.0, eval_every=2, eval_samples=60, eval_repeats=2,
                                  kid_subsets=3, kid_subset_size=20)
    ResamplingRun(inputs, settings, tmp_path, progress=False, log=lambda m: None).run()
    files = {p.name for p in strict_parse_all(tmp_path)}
    assert {"summary.json", "log.jsonl"} <= files
    summary = strict_loads((tmp_path / "summary.json").read_text())
    assert summary["best"]["clip_fid"] is None and summary["best"]["fid"] > 0
    rows = [strict_loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2, 4] and all(r["clip_fid"] is None for r in rows)
