"""benchmarks/gpu_check.py: refuses cleanly without CUDA, fails soft per section, and every section runs (CPU dry run)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run(*args: str, env_extra: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_refuses_in_one_line_without_cuda(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = _run("--json", str(out), env_extra={"CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device visible"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not out.exists()


def test_a_failing_or_overlong_section_becomes_one_row_and_the_rest_run(tmp_path, monkeypatch, capsys):
    gc = _load_script()

    def broken(check):
        raise ValueError("synthetic failure\nsecond line")

    def slow(check):
        time.sleep(5)
        return [gc.Row("slow", "never", 1.0)]

    def fine(check):
        return [gc.Row("fine", "answer", 42.0, "units")]

    monkeypatch.setattr(gc, "SECTIONS", {"broken": broken, "slow": slow, "fine": fine})
    tiny = dataclasses.replace(gc.Sizes.tiny(), budget_s={"broken": 10, "slow": 0.5, "fine": 10})
    monkeypatch.setattr(gc.Sizes, "tiny", staticmethod(lambda: tiny))
    out = tmp_path / "r" / "gpu_check.json"
    start = time.perf_counter()
    code = gc.main(["--dry-run-cpu", "--json", str(out)])
    assert time.perf_counter() - start < 4, "the time box did not stop the slow section"
    assert code == 1
    rows = json.loads(out.read_text())["rows"]
    by = {(r["section"], r["metric"]): r for r in rows}
    assert by[("broken", "FAILED")]["note"] == "ValueError: synthetic failure"
    assert "time box" in by[("slow", "FAILED")]["note"]
    assert by[("fine", "answer")]["value"] == 42.0
    assert ("slow", "never") not in by
    printed = capsys.readouterr().out
    assert "synthetic failure" in printed and "answer" in printed
    assert [p.name for p in out.parent.iterdir()] == ["gpu_check.json"], "a temporary file was left behind"


@pytest.mark.slow
def test_every_section_runs_on_cpu_at_tiny_sizes(tmp_path, default_weights):
    out = tmp_path / "gpu_check.json"
    result = _run("--dry-run-cpu", "--json", str(out), timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert {r["section"] for r in rows} == {"fid_orl", "features", "generators", "heatmap", "resampling", "pairs"}
    assert not [r for r in rows if "FAILED" in (r["metric"], r["value"])]
    by = {(r["section"], r["metric"]): r["value"] for r in rows}
    assert by[("fid_orl", "relative difference")] == 0.0  # the same device twice: bit-identical
    assert 0 < by[("fid_orl", "FID CPU")] < 1000
    diffs = [r["value"] for r in rows if "max pixel difference" in r["metric"]]
    assert diffs == [0, 0, 0]  # StyleGAN2, StyleGAN3-T, StyleGAN3-R: the same device twice
    assert all(r["value"] > 0 for r in rows if r["unit"] in ("img/s", "s/image"))
    assert report["environment"]["dry_run_cpu"] is True
    assert report["environment"]["gpu_precision"]["tf32"] is False
    assert "section" in result.stdout and "fid_orl" in result.stdout


@pytest.mark.parametrize(("cpus", "cuda", "cpu"), [(1, 0, 0), (2, 0, 0), (3, 1, 1), (4, 3, 2), (6, 5, 3), (16, 8, 8), (64, 8, 8)])
def test_decode_workers_by_default_where_cores_allow(monkeypatch, cpus, cuda, cpu):
    """With the network on a GPU every core but one decodes (up to 8); on a CPU half of them do."""
    from fidlens.detectors import features

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert features.default_workers("cuda") == cuda
    assert features.default_workers(torch.device("cuda:1")) == cuda
    assert features.default_workers("cpu") == cpu
    assert features.default_workers() == cpu
