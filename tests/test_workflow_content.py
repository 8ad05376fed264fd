"""The workflow sees image content, and refuses bad config values before any job runs.

An image edited in place (its old mtime put back) reruns exactly the jobs of its image set; a
touch alone reruns nothing. A bad config value (device: tpu, batch_size: 0, a name that points at
nothing, an empty image folder) ends `snakemake` with one `error: config KEY: ...` line, exit
status 2, and no file written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ORL, REPO, write_images

from fidlens.workflow.targets import load_plan

# Without profiles/default: its settings do not bear on what reruns, and a `prioritize:` there
# would add the demo's outputs to every DAG (Snakemake builds prioritized targets).
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--workflow-profile", "none"]


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake in WORKDIR with CONFIG alone; $FIDLENS_HOME (weights, feature cache) beside WORKDIR."""
    env = {**os.environ, "FIDLENS_HOME": str(workdir.parent / "home")}
    return subprocess.run([*SNAKEMAKE, "--cores", "2", "--configfile", str(config), "--directory", str(workdir),
                           *args], capture_output=True, text=True, timeout=900, env=env)


def small_config(tmp_path: Path, weights: str = "default", **changes) -> Path:
    """A config of its own: the defaults run nothing, so only CHANGES (top-level keys) is planned."""
    config = {"detector": {"name": "inception", "weights": weights}, "threads": 1, "demo": {"orl_dir": str(ORL)}}
    config.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def left_behind(work: Path) -> list[str]:
    """Files under WORK other than Snakemake's own run log (.snakemake/log/): none when no job ran."""
    files = [p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()]
    return [f for f in files if not f.startswith(".snakemake/log/")]


def planned_jobs(result: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    """(rule, dataset) of every job a dry run plans, from its job blocks."""
    text = result.stdout + result.stderr
    blocks = re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", text, flags=re.M)
    jobs = []
    for rule, body in blocks:
        found = re.search(r"wildcards: dataset=(\S+)", body)
        jobs.append((rule, found.group(1) if found else ""))
    return sorted(jobs)


def edit_in_place(path: Path) -> None:
    """Change one pixel, keep the file's size when the encoder allows, and put the old mtime back."""
    from PIL import Image

    before = os.stat(path)
    pixels = np.asarray(Image.open(path)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


@pytest.mark.slow
def test_an_image_edited_in_place_reruns_exactly_its_sets_jobs(tmp_path, default_weights):
    rng = np.random.default_rng(7)
    noise = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(8)]
    folder_a = write_images(tmp_path / "A", noise[:4])
    folder_b = write_images(tmp_path / "B", noise[4:])
    config = small_config(tmp_path, str(default_weights),
                          datasets={"A": {"path": str(folder_a)}, "B": {"path": str(folder_b)}})
    work = tmp_path / "run"
    work.mkdir()
    first = snakemake(work, config)
    assert first.returncode == 0, first.stderr[-3000:]
    plan = load_plan(config)
    manifest_a = work / plan.manifest_path("A")
    assert '"num_files": 4' in manifest_a.read_text()
    again = snakemake(work, config, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    stats = {name: work / plan.stats_path(name) for name in "AB"}
    before = {name: (path.read_bytes(), os.stat(path).st_mtime_ns) for name, path in stats.items()}
    manifest_time = os.stat(manifest_a).st_mtime_ns
    edit_in_place(folder_a / "img001.png")
    os.utime(folder_b / "img000.png")  # a touch: new mtime, same bytes -> nothing to redo for B

    plan = snakemake(work, config, "-n")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_jobs(plan) == [("all", ""), ("features", "A"), ("statistics", "A")], plan.stdout
    assert os.stat(manifest_a).st_mtime_ns > manifest_time  # the dry run brought the manifest up to date

    rerun = snakemake(work, config)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    from fidlens.metrics.stats import Statistics

    assert stats["A"].read_bytes() != before["A"][0]
    new_a, old_b = Statistics.load(stats["A"]), Statistics.load(stats["B"])
    assert new_a.num_images == 4 and old_b.num_images == 4
    assert (stats["B"].read_bytes(), os.stat(stats["B"]).st_mtime_ns) == before["B"]
    final = snakemake(work, config, "-n")
    assert final.returncode == 0 and "Nothing to be done" in final.stdout + final.stderr


def test_manifest_refresh_sees_bytes_not_mtimes(tmp_path):
    """The unit under the workflow: rewritten only on a content change, even one that keeps the mtime."""
    from fidlens.data.manifest import refresh_manifest, stamps_path, write_manifest

    rng = np.random.default_rng(3)
    folder = write_images(tmp_path / "set", [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)])
    (folder / "notes.txt").write_text("not an image: not in the manifest")
    manifest = tmp_path / "manifests/set.json"
    content = write_manifest(folder, manifest)
    assert content["num_files"] == 3 and [f[0] for f in content["files"]] == ["img000.png", "img001.png", "img002.png"]
    assert stamps_path(manifest).is_file()

    os.utime(folder / "img000.png")
    (folder / "notes.txt").write_text("edited")
    assert refresh_manifest(folder, manifest) is False  # a touch and a non-image edit change nothing
    edit_in_place(folder / "img002.png")
    assert refresh_manifest(folder, manifest) is True
    assert refresh_manifest(folder, manifest) is False
    stamps_path(manifest).write_text("{not json")  # a damaged stamp cache only costs a re-hash
    assert refresh_manifest(folder, manifest) is False
    write_images(folder, [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)], prefix="new")
    assert refresh_manifest(folder, manifest) is True
    assert json_files(manifest) == ["img000.png", "img001.png", "img002.png", "new000.png"]


def json_files(manifest: Path) -> list[str]:
    import json

    return [entry[0] for entry in json.loads(manifest.read_text())["files"]]


@pytest.mark.slow
def test_invalid_device_fails_at_config_validation_before_any_job(tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    result = snakemake(work, small_config(tmp_path, datasets={"A": {"path": str(ORL / "s1")}}),
                       "--config", "device=tpu")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stdout + result.stderr
    assert lines[-1].startswith("error: config device: 'tpu'") and "cuda:N" in lines[-1]
    assert "Traceback" not in result.stdout + result.stderr
    assert left_behind(work) == []  # no job ran: no results/, logs/ or metadata


def test_config_and_cli_share_one_device_grammar():
    from fidlens.core.device_spec import DEVICE_SPEC_PATTERN

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    assert schema["properties"]["device"]["pattern"] == DEVICE_SPEC_PATTERN


def _bad_config_cases():
    """(id, config changes, expected last line); each is one distinct value that would fail only in a job."""
    ds = {"A": {"path": str(ORL / "s1")}}
    demo_on = {"enabled": True, "orl_dir": str(ORL)}
    return [
        ("device-cuda-letter", {"device": "cuda:x"}, r"config device: 'cuda:x' does not match"),
        ("device-uppercase", {"device": "CPU"}, r"config device: 'CPU' does not match"),
        ("batch-size-zero", {"batch_size": 0}, r"config batch_size: 0 is less than the minimum of 1"),
        ("batch-size-negative", {"batch_size": -5}, r"config batch_size: -5 is less than the minimum of 1"),
        ("threads-zero", {"threads": 0}, r"config threads: 0 is less than the minimum of 1"),
        ("workers-negative", {"workers": -1}, r"config workers: -1 is less than the minimum of 0"),
        ("max-images-zero", {"datasets": {"A": {"path": str(ORL / "s1"), "max_images": 0}}},
         r"config datasets\.A\.max_images: 0 is less than the minimum of 1"),
        ("dataset-path-empty", {"datasets": {"A": {"path": ""}}}, r"config datasets\.A\.path: '' should be non-empty"),
        ("weights-empty", {"detector": {"weights": ""}}, r"config detector\.weights: '' should be non-empty"),
        ("legacy-weights-empty", {"inception_weights": ""}, r"config inception_weights: '' should be non-empty"),
        ("weights-twice", {"inception_weights": "w.pt"}, r"config inception_weights: give either detector"),
        ("run-name-path", {"run": "../elsewhere"}, r"config run: '\.\./elsewhere' does not match"),
        ("grid-zero-rows", {"generators": {"g": {"network": "ppca-demo"}},
                            "heatmaps": {"g": {"reference": "reference", "grids": [[0, 0, 2]]}}},
         r"config heatmaps\.g\.grids\.0\.1: 0 is less than the minimum of 1"),
        ("sample-face-format", {"demo": {**demo_on, "sample_face": "face1"}},
         r"config demo\.sample_face: 'face1' does not match"),
        ("sample-face-not-compared", {"demo": {**demo_on, "sample_face": "s02_01"}},
         r"config demo\.sample_face: 's02_01' is not in the comparison set \(subjects 21-30\)"),
        ("subjects-reversed", {"demo": {**demo_on, "reference_subjects": [20, 1]}},
         r"config demo\.reference_subjects: the first subject \(20\) comes after the last \(1\)"),
        ("fit-on-unknown-set", {"generators": {"g": {"network": "ppca-demo", "fit_on": "nosuchset"}},
                                "heatmaps": {"g": {"reference": "reference", "seeds": [1]}}},
         r"config generators\.g\.fit_on: 'nosuchset' is not a known image set"),
        ("heatmap-unknown-generator", {"heatmaps": {"nosuchgen": {"reference": "reference", "seeds": [1]}}},
         r"config heatmaps\.nosuchgen: 'nosuchgen' is not a known generator \(none configured\)"),
        ("resampling-unknown-pool", {"datasets": ds, "resampling": {"r": {"reals": "A", "pool": ["A", "B"],
                                                                       "modes": ["pre_logits"]}}},
         r"config resampling\.r\.pool: 'B' is not a known image set"),
        ("resampling-no-pool", {"datasets": ds, "resampling": {"r": {"reals": "A", "modes": ["pre_logits"]}}},
         r"config resampling\.r: give a candidate pool"),
        ("pairs-unknown-generator", {"datasets": ds, "pairs": {"m": {"generator": "nosuchgen", "reference": "A"}}},
         r"config pairs\.m\.generator: 'nosuchgen' is not a known generator"),
        ("dataset-missing-folder", {"datasets": {"A": {"path": "/nonexistent/fidlens/images"}}},
         r"config datasets\.A\.path: /nonexistent/fidlens/images does not exist"),
        ("dataset-not-images", {"datasets": {"A": {"path": str(REPO / "pyproject.toml")}}},
         r"config datasets\.A\.path: .*pyproject\.toml is neither a folder of images nor a \.zip file"),
        ("zip-source-missing", {"zips": {"z": {"source": "/nonexistent/fidlens/src"}}},
         r"config zips\.z\.source: /nonexistent/fidlens/src does not exist"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("changes, expect", [c[1:] for c in _bad_config_cases()],
                         ids=[c[0] for c in _bad_config_cases()])
def test_bad_config_value_is_refused_in_one_line_before_any_job(tmp_path, changes, expect):
    work = tmp_path / "run"
    work.mkdir()
    result = snakemake(work, small_config(tmp_path, **changes), "-n")
    output = result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, output[-2000:]
    assert re.match(r"error: " + expect, lines[-1]), lines[-1]
    assert "Traceback" not in output and "Exception" not in output
    assert left_behind(work) == []


@pytest.mark.slow
def test_empty_image_folder_is_refused_before_any_job(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    work = tmp_path / "run"
    work.mkdir()
    result = snakemake(work, small_config(tmp_path, datasets={"A": {"path": str(tmp_path / "empty")}}))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and lines[-1].startswith("error: config datasets.A.path: no images found in")
    assert left_behind(work) == []
    # The good run after the fix: the folder gets its images and the statistics are made.
    write_images(tmp_path / "empty", [np.zeros((8, 8, 3), np.uint8)] * 2)
    plan = snakemake(work, small_config(tmp_path, datasets={"A": {"path": str(tmp_path / "empty")}}), "-n")
    assert plan.returncode == 0 and ("image_manifest", "A") in planned_jobs(plan), plan.stderr[-2000:]


@pytest.mark.slow
def test_a_half_edited_study_does_not_block_targets_that_do_not_need_it(tmp_path):
    """Names are checked where the DAG uses them: asking for one dataset's statistics still plans."""
    work = tmp_path / "run"
    work.mkdir()
    config = small_config(tmp_path, datasets={"A": {"path": str(ORL / "s1")}},
                          resampling={"r": {"reals": "A", "pool": ["nosuchset"], "modes": ["pre_logits"]}})
    planned = snakemake(work, config, "-n", load_plan(config).stats_path("A"))
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert ("features", "A") in planned_jobs(planned)
    everything = snakemake(work, config, "-n")
    assert everything.returncode == 2
    assert everything.stderr.strip().splitlines()[-1].startswith("error: config resampling.r.pool: 'nosuchset'")
