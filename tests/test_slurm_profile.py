"""profiles/slurm: every GPU rule asks CPUs per GPU from its threads, as docs/CLUSTER.md says.

The plugin's dry run is the ground truth (it prints each job's resources as sbatch will get
them); it runs when snakemake-executor-plugin-slurm is installed (`pip install -e ".[cluster]"`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ORL, REPO

PROFILE = REPO / "profiles" / "slurm"


def _gpu_rules() -> set[str]:
    """Rules tagged `gpu=N` in rules/*.smk."""
    rules = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=\s*(?:rule|checkpoint) \w+:)", smk.read_text()):
            name = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            if name and re.search(r"^\s+gpu=\d+", block, re.M):
                rules.add(name.group(1))
    return rules


def test_every_gpu_rule_asks_cpus_per_gpu_from_its_threads():
    resources = yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"]
    gpu_rules = _gpu_rules()
    assert {"features", "demo_features", "resample", "heatmaps", "heatmap_seed", "pairs_maps"} <= gpu_rules
    for rule in gpu_rules:
        entry = resources.get(rule)
        assert entry, f"profiles/slurm has no set-resources for GPU rule {rule}"
        assert entry["gpu"] == 1 and entry["slurm_partition"], rule
        assert entry["cpus_per_gpu"] == "threads", f"{rule}: cpus_per_gpu should follow the rule's threads"


def test_cluster_doc_gives_the_dry_run_that_shows_real_threads():
    text = (REPO / "docs" / "CLUSTER.md").read_text()
    assert "snakemake --profile profiles/slurm -n --cores" in text
    assert "cpus_per_gpu: threads" in text


def _jobs(dry_run_output: str) -> list[dict[str, str]]:
    """(rule, threads, resources) of every job block a dry run prints."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", dry_run_output):
        name = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if not name:
            continue
        threads = re.search(r"^\s+threads: (\d+)", block, re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        jobs.append({"rule": name.group(1), "threads": threads.group(1) if threads else "1",
                     "resources": resources.group(1) if resources else ""})
    return jobs


@pytest.mark.slow
def test_slurm_dry_run_gives_gpu_jobs_their_threads_as_cpus_per_gpu(tmp_path: Path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["demo"]["orl_dir"] = str(ORL)
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(PROFILE), "-n",
         "--cores", "64", "--max-threads", "3", "--configfile", str(tmp_path / "demo.yaml"),
         "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "FIDLENS_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _jobs(result.stdout + result.stderr)
    gpu_jobs = [job for job in jobs if job["rule"] in _gpu_rules()]
    assert {job["rule"] for job in gpu_jobs} >= {"demo_features", "resample", "heatmaps", "pairs_maps"}
    for job in gpu_jobs:
        assert job["threads"] == "3", job
        assert "cpus_per_gpu=3" in job["resources"] and "gpu=1" in job["resources"], job
