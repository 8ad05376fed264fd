"""benchmarks/record.py keeps what a benchmark printed; the README's benchmarks block shows exactly that."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from fidlens.workflow import readme_numbers

REPO = Path(__file__).resolve().parents[1]


def _load_recorder():
    spec = importlib.util.spec_from_file_location("bench_record", REPO / "benchmarks" / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_is_recorded_and_rendered_as_printed(tmp_path, monkeypatch, capsys):
    recorder = _load_recorder()
    monkeypatch.setattr(recorder, "RECORDS", tmp_path / "records")
    script = tmp_path / "bench_frechet.py"
    script.write_text("import sys\nprint('speed-up  :  11.80 x')\nprint('args', sys.argv[1:])\n")
    assert recorder.main([str(script), "--dim", "64"]) == 0
    record = json.loads((tmp_path / "records" / "bench_frechet.json").read_text())
    assert record["output"] == ["speed-up  :  11.80 x", "args ['--dim', '64']"]
    assert record["args"] == ["--dim", "64"] and record["cores"] >= 1 and record["date"]

    monkeypatch.setattr(readme_numbers, "GPU_RECORDS", tmp_path / "records")
    block = readme_numbers.render_benchmarks()
    assert "speed-up  :  11.80 x" in block and "`bench_frechet.py --dim 64`" in block
    assert "Not recorded yet" in block and "`bench_features.py`" in block


def test_a_failing_benchmark_records_nothing(tmp_path, monkeypatch):
    recorder = _load_recorder()
    monkeypatch.setattr(recorder, "RECORDS", tmp_path / "records")
    script = tmp_path / "bench_broken.py"
    script.write_text("print('half a table')\nraise SystemExit(3)\n")
    assert recorder.main([str(script)]) == 3
    assert not (tmp_path / "records").exists()


def test_usage_without_a_script():
    assert _load_recorder().main([]) == 2
    assert _load_recorder().main(["notes.txt"]) == 2
