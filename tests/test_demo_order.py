"""The demo's headline (FID table and figure) is scheduled before everything else.

Every rule on the way to results/demo/tables/fid_demo.csv and results/demo/figures/fid_vs_distortion.png
has `priority: HEADLINE_PRIORITY` (rules/demo.smk), which Snakemake's scheduler serves first
whenever several jobs are ready and compete for cores or the GPU slot; everything else has 0.
The dry run prints each job's priority, so the plan is checked without running the demo.
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

from fidlens.workflow.targets import load_plan

HEADLINE_CHAIN = {"source_manifest", "demo_split", "demo_distort", "image_manifest", "demo_features", "statistics",
                  "fid_table_demo", "plot_fid_vs_distortion"}
LATER = {"resample", "heatmaps", "generated_features", "fit_demo_generator", "pairs_file", "pairs_maps"}


def _dry_run_jobs(tmp_path: Path) -> list[tuple[str, int]]:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["demo"]["orl_dir"] = str(ORL)
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "2", "--resources",
         "gpu=1", "--configfile", str(tmp_path / "demo.yaml"), "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "FIDLENS_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    assert "Shell command: None" not in text  # no printshellcmds for script: rules
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", text):
        name = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if name:
            priority = re.search(r"^\s+priority: (\d+)$", block, re.M)
            jobs.append((name.group(1), int(priority.group(1)) if priority else 0))
    return jobs


@pytest.mark.slow
def test_headline_chain_runs_first(tmp_path):
    jobs = _dry_run_jobs(tmp_path)
    rules = {rule for rule, _ in jobs}
    assert rules >= HEADLINE_CHAIN and rules >= LATER
    unprioritised = sorted({rule for rule, priority in jobs if rule in HEADLINE_CHAIN and priority < 1})
    assert not unprioritised, f"upstream of the demo's FID table but without `priority:`: {unprioritised}"
    later = min(priority for rule, priority in jobs if rule in HEADLINE_CHAIN)
    assert all(priority < later for rule, priority in jobs if rule in LATER)
    image_sets = ["reference", *load_plan(tmp_path / "demo.yaml").demo_comparison_sets()]
    # one job featurises all eight headline sets (the detector loaded once), none is left to `features`
    assert sum(rule == "demo_features" for rule, _ in jobs) == 1 and len(image_sets) == 8
    assert not any(rule == "features" for rule, _ in jobs)
    assert sum(rule == "statistics" for rule, _ in jobs) == 8
