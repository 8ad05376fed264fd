"""Provenance records beside tables and figures: hashing, large files, content, atomic writes."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO

from fidlens.workflow import provenance
from fidlens.assets.registry import ASSETS
from fidlens.workflow.provenance import (
    describe_path,
    jsonable,
    provenance_path,
    record_job_provenance,
    record_provenance,
    write_provenance,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- hashing -----------------------------------------------------------------------------------

def test_small_files_are_hashed_in_full(tmp_path):
    data = bytes(range(256)) * 5000  # > one read chunk
    entry = describe_path(write(tmp_path / "a.npz", data))
    assert entry == {"path": str(tmp_path / "a.npz"), "kind": "file", "bytes": len(data), "sha256": sha(data)}
    assert "sha256_source" not in entry


def test_a_file_at_the_limit_is_still_hashed(tmp_path):
    entry = describe_path(write(tmp_path / "b.bin", b"x" * 100), hash_limit=100)
    assert entry["sha256"] == sha(b"x" * 100)


def test_large_file_uses_its_first_download_record(tmp_path):
    big = write(tmp_path / "net.pkl", b"y" * 101)
    recorded = "ab" * 32
    (tmp_path / "net.pkl.sha256.json").write_text(json.dumps({"sha256": recorded, "size": 101}))
    entry = describe_path(big, hash_limit=100)
    assert entry["sha256"] == recorded and entry["bytes"] == 101
    assert "net.pkl.sha256.json" in entry["sha256_source"]


def test_a_record_for_another_size_is_not_trusted(tmp_path):
    big = write(tmp_path / "net.pkl", b"y" * 101)
    (tmp_path / "net.pkl.sha256.json").write_text(json.dumps({"sha256": "ab" * 32, "size": 5}))
    entry = describe_path(big, hash_limit=100)
    assert entry["sha256"] is None
    assert entry["sha256_source"].startswith("not hashed: larger than 100 bytes")
    assert "records 5 bytes" in entry["sha256_source"]


def test_a_broken_record_falls_back_without_failing(tmp_path):
    big = write(tmp_path / "net.pkl", b"y" * 101)
    (tmp_path / "net.pkl.sha256.json").write_text("{not json")
    entry = describe_path(big, hash_limit=100)
    assert entry["sha256"] is None and "not a fidlens checksum record" in entry["sha256_source"]


def test_large_registry_target_uses_the_pinned_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))  # pinned weights live in $FIDLENS_HOME/weights
    asset = next(a for a in ASSETS if a.pinned)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / asset.target, b"z" * 64)
    for path in (Path(asset.target), tmp_path / asset.target):  # relative and absolute
        entry = describe_path(path, hash_limit=10)
        assert entry["sha256"] == asset.sha256 and entry["bytes"] == 64
        assert asset.name in entry["sha256_source"]


def test_large_file_without_any_checksum_records_only_its_size(tmp_path):
    entry = describe_path(write(tmp_path / "features.npz", b"q" * 2048), hash_limit=1024)
    assert entry["bytes"] == 2048 and entry["sha256"] is None
    assert entry["sha256_source"] == "not hashed: larger than 1024 bytes"
    assert provenance.HASH_LIMIT == 256 * 1024**2
    big = describe_path(write(tmp_path / "f2.npz", b"q" * 10), hash_limit=0)
    assert big["sha256_source"] == "not hashed: larger than 0 bytes"


def test_directories_are_summarised(tmp_path):
    write(tmp_path / "set" / "a.png", b"1" * 10)
    write(tmp_path / "set" / "sub" / "b.png", b"2" * 32)
    write(tmp_path / "set" / ".snakemake_timestamp", b"")
    entry = describe_path(tmp_path / "set")
    assert entry == {"path": str(tmp_path / "set"), "kind": "directory", "files": 2, "bytes": 42}
    assert describe_path(tmp_path / "nothing")["kind"] == "missing"


# --- JSON-safe values --------------------------------------------------------------------------

def test_jsonable_makes_params_plain():
    value = {
        "path": Path("a/b.npz"), "grid": (2, 4), "seeds": np.arange(3), "psi": np.float32(0.5),
        "n": np.int64(7), "nan": math.nan, "inf": -math.inf, "names": {"b", "a"}, 3: None,
        "fn": lambda wc: wc, "nested": [{"x": (1.5,)}], "flag": True,
    }
    out = jsonable(value)
    assert out["path"] == "a/b.npz" and out["grid"] == [2, 4] and out["seeds"] == [0, 1, 2]
    assert out["psi"] == 0.5 and out["n"] == 7 and out["nan"] == "nan" and out["inf"] == "-inf"
    assert out["names"] == ["a", "b"] and out["3"] is None and out["fn"].startswith("<callable")
    assert out["nested"] == [{"x": [1.5]}] and out["flag"] is True
    json.dumps(out, allow_nan=False)


# --- the record --------------------------------------------------------------------------------

def _fake_job(tmp_path: Path, *, scriptdir: Path | None = None, named: bool = True):
    """The ``snakemake`` object a script sees (Snakemake's own class), or a plain look-alike."""
    from snakemake.iocontainers import (
        InputFiles,
        Log,
        OutputFiles,
        Params,
        ResourceList,
        Snakemake,
        Wildcards,
    )

    ref = write(tmp_path / "results/stats/reference.npz", b"ref" * 10)
    sets = [write(tmp_path / f"results/stats/{n}.npz", n.encode()) for n in ("comparison", "blur1")]
    write(tmp_path / "results/data/comparison/s01_01.png", b"p" * 7)
    table = write(tmp_path / "results/tables/fid_demo.csv", b"set,fid\ncomparison,1.0\n")
    figure = write(tmp_path / "results/figures/fid.png", b"\x89PNG fake")
    data = write(tmp_path / "results/tables/rows.npz", b"data")
    if named:
        inputs = InputFiles([str(ref), *map(str, sets), str(tmp_path / "results/data/comparison")])
        inputs._set_name("ref_stats", 0)
        inputs._set_name("stats", 1, end=3)
        inputs._set_name("images", 3)
        params = Params([{"blur": [0.5, 1.0]}, {"num_subsets": 10, "seed": 0}, Path("x.yaml"), (2, 4)])
        for i, name in enumerate(("distortions", "kid", "path", "grid")):
            params._set_name(name, i)
        wildcards = Wildcards(["demo", "0003"])
        wildcards._set_name("generator", 0)
        wildcards._set_name("seed", 1)
        output = OutputFiles([str(table), str(figure), str(data)])
        job = Snakemake(inputs, output, params, wildcards, 2, ResourceList(), Log([str(tmp_path / "x.log")]),
                        {"covariance": "unbiased"}, "fid_table_demo", None,
                        scriptdir=str(scriptdir) if scriptdir else None)
        return job, table, figure, data
    else:
        inputs = [str(ref), *map(str, sets)]
        params = {"distortions": {"blur": [0.5, 1.0]}, "kid": {"num_subsets": 10, "seed": 0},
                  "path": Path("x.yaml"), "grid": (2, 4)}
        wildcards = {"generator": "demo", "seed": "0003"}
        output = [str(table), str(figure), str(data)]
    job = SimpleNamespace(input=inputs, output=output, params=params, wildcards=wildcards, threads=2,
                          rule="fid_table_demo", scriptdir=str(scriptdir) if scriptdir else None)
    return job, table, figure, data


@pytest.mark.parametrize("named", [True, False])
def test_record_job_provenance_writes_one_record_per_table_or_figure(tmp_path, named):
    job, table, figure, data = _fake_job(tmp_path, scriptdir=REPO / "scripts", named=named)
    written = record_job_provenance(job)
    assert written == [provenance_path(table), provenance_path(figure)]
    assert not provenance_path(data).exists()  # .npz is data, not a table or figure
    record = json.loads(provenance_path(table).read_text())
    assert record["schema"] == "fidlens-provenance/1" and record["rule"] == "fid_table_demo"
    assert record["output"] == {"path": str(table), "kind": "file", "bytes": table.stat().st_size,
                                "sha256": sha(table.read_bytes())}
    assert record["params"] == {"distortions": {"blur": [0.5, 1.0]}, "kid": {"num_subsets": 10, "seed": 0},
                                "path": "x.yaml", "grid": [2, 4]}
    assert record["wildcards"] == {"generator": "demo", "seed": "0003"}
    assert record["threads"] == 2
    inputs = record["inputs"]
    assert inputs[0]["path"].endswith("reference.npz") and inputs[0]["sha256"] == sha(b"ref" * 10)
    assert inputs[2]["sha256"] == sha(b"blur1")
    if named:
        assert [i["name"] for i in inputs] == ["ref_stats", "stats", "stats", "images"]
        assert inputs[3]["kind"] == "directory" and inputs[3]["files"] == 1 and inputs[3]["bytes"] == 7
    else:
        assert all("name" not in i for i in inputs) and len(inputs) == 3
    packages = record["packages"]
    assert set(packages) == {"python", "fidlens", "torch", "numpy", "scipy", "pillow", "matplotlib", "opencv",
                             "snakemake", "pyyaml"}
    assert packages["numpy"] == np.__version__ and packages["fidlens"]
    device = record["device"]
    assert device["kind"] in ("cpu", "cuda") and device["name"] and isinstance(device["torch_threads"], int)
    assert record["platform"]["system"] and record["platform"]["machine"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time_utc"])
    assert record["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
    # both outputs of the job share everything but their own entry
    other = json.loads(provenance_path(figure).read_text())
    assert other["output"]["path"] == str(figure)
    assert {k: v for k, v in other.items() if k != "output"} == {k: v for k, v in record.items() if k != "output"}


def test_git_commit_is_null_outside_a_checkout(tmp_path):
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    job, table, _, _ = _fake_job(tmp_path / "w", scriptdir=outside, named=False)
    record_job_provenance(job)
    record = json.loads(provenance_path(table).read_text())
    assert record["git_commit"] is None and record["git_dirty"] is None


def test_git_commit_of_a_checkout(tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    (repo / "f.txt").write_text("1")
    for cmd in (["init", "-q"], ["add", "f.txt"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env=env, capture_output=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert provenance.git_commit(repo) == {"commit": head, "dirty": False}
    (repo / "f.txt").write_text("2")
    assert provenance.git_commit(repo) == {"commit": head, "dirty": True}


def test_extra_folders_add_their_tables_and_figures(tmp_path):
    out = tmp_path / "run"
    log = write(out / "log.csv", b"iteration\n0\n")
    write(out / "curves.png", b"png")
    write(out / "grids" / "grid_lowest.png", b"png")
    write(out / "best_weights.npy", b"npy")
    job = SimpleNamespace(input=[], output=[str(log), str(out / "summary.json")], params={}, wildcards={},
                          threads=1, rule="resample", scriptdir=None)
    write(out / "summary.json", b"{}")
    first = record_job_provenance(job, extra=[out])
    assert sorted(p.name for p in first) == ["curves.png.provenance.json", "grid_lowest.png.provenance.json",
                                             "log.csv.provenance.json"]
    # a second run does not record the records themselves
    assert sorted(record_job_provenance(job, extra=[out])) == sorted(first)
    assert not (out / "summary.json.provenance.json").exists()


def test_no_table_or_figure_means_no_record_and_no_hashing(tmp_path, monkeypatch):
    data = write(tmp_path / "stats.npz", b"s")
    monkeypatch.setattr(provenance, "provenance_record", lambda **kw: pytest.fail("should not be built"))
    assert record_provenance([data], rule="statistics") == []


def test_write_is_atomic(tmp_path, monkeypatch):
    figure = write(tmp_path / "fig.png", b"png")
    target = provenance_path(figure)
    target.write_text("previous record\n")
    real_write_text = Path.write_text

    def half_then_fail(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_provenance(figure, {"rule": "x"})
    monkeypatch.undo()
    assert target.read_text() == "previous record\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "fig.png.provenance.json"]
    write_provenance(figure, {"rule": "x"})
    assert json.loads(target.read_text())["rule"] == "x"


def test_device_and_versions_describe_this_machine():
    device = provenance.device_info()
    assert device["cpu"] and device["cpu_count"] >= 1
    versions = provenance.package_versions()
    assert versions["python"].count(".") == 2 and versions["torch"] and versions["opencv"]
