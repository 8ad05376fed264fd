"""The paper config's GPU-hours estimate follows from its plan and the recorded costs, row by row."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
from conftest import REPO

from fidlens.core.errors import FidlensError
from fidlens.workflow import paper_estimate as pe
from fidlens.workflow.config import load_config
from fidlens.workflow.targets import Plan


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return load_config(REPO / "config" / "paper.yaml")


@pytest.fixture()
def records_copy(tmp_path):
    """A writable copy of benchmarks/records, and a function that rewrites one GPU-check value in it."""
    folder = tmp_path / "records"
    shutil.copytree(pe.RECORDS, folder)

    def set_gpu_value(metric: str, factor: float) -> None:
        hits = 0
        for path in folder.glob("gpu_check_*.json"):
            record = json.loads(path.read_text())
            for row in record["rows"]:
                if row["metric"] == metric and isinstance(row["value"], (int, float)):
                    row["value"] *= factor
                    hits += 1
            path.write_text(json.dumps(record))
        assert hits == 1, metric

    return folder, set_gpu_value


def _rows(plan: Plan, folder=pe.RECORDS) -> dict[str, pe.Row]:
    return {row.part: row for row in pe.estimate(plan, pe.Records(folder)).rows}


def test_total_is_the_sum_of_rows_and_every_row_names_its_source(paper_config):
    est = pe.estimate(Plan(paper_config), pe.Records())
    assert est.hours == pytest.approx(sum(row.hours for row in est.rows))
    assert (est.low, est.high) == (pytest.approx(sum(r.low for r in est.rows)), pytest.approx(sum(r.high for r in est.rows)))
    assumptions = {a.name for a in pe.ASSUMPTIONS}
    for row in est.rows:
        assert row.source in pe.SOURCES and 0 < row.low <= row.hours <= row.high, row
        assert any((pe.RECORDS / item).is_file() for item in row.basis), row  # a record it was measured from
        named = assumptions & set(row.basis)
        assert (row.source == "assumed") == bool(named), row  # assumed exactly when an assumption is used
        if row.source == "measured":
            assert row.low == row.high
    # every part of the config is costed: heatmaps, each resampling mode, each pairs model, features
    parts = {row.part for row in est.rows}
    for mode in paper_config["resampling"]["stylegan2-ffhq256"]["modes"]:
        assert f"resampling stylegan2-ffhq256: optimisation, {mode}" in parts
    assert {f"pairs study {model}" for model in paper_config["pairs"]} <= parts
    assert {"Inception features", "CLIP features", "pair maps and Fig. 4"} <= parts


def test_a_recorded_cost_moves_its_rows_in_proportion(paper_config, records_copy):
    folder, set_gpu_value = records_copy
    plan = Plan(paper_config)
    before = _rows(plan, folder)
    set_gpu_value("per iteration, 250,000 x 2048", 2.0)
    set_gpu_value("StyleGAN3-R 1024² on cuda", 0.5)  # half the rate: twice the hours
    after = _rows(plan, folder)
    doubled = {"pairs study sg3r-ffhq", "pairs study sg3r-metfaces"}
    doubled |= {f"resampling stylegan2-ffhq256: optimisation, {mode}"
                for mode in paper_config["resampling"]["stylegan2-ffhq256"]["modes"]}
    for part, row in before.items():
        factor = 2.0 if part in doubled else 1.0
        if part != "pair maps and Fig. 4":  # mixes generators: moves, but not by a single factor
            assert (after[part].low, after[part].high) == (pytest.approx(factor * row.low),
                                                          pytest.approx(factor * row.high)), part
    assert after["pair maps and Fig. 4"].hours > before["pair maps and Fig. 4"].hours


def test_the_plan_sets_the_work(paper_config):
    base = _rows(Plan(paper_config))
    changed = copy.deepcopy(paper_config)
    run = changed["resampling"]["stylegan2-ffhq256"]
    run["iterations"] //= 2
    run["generator"]["num_images"] //= 2
    changed["pairs"]["sg3t-ffhq"]["num_images"] = 20_000
    rows = _rows(Plan(changed))
    # half the candidates and half the steps: a quarter of the optimisation; half the pool to generate
    assert rows["resampling stylegan2-ffhq256: optimisation, pre_logits"].hours == pytest.approx(
        base["resampling stylegan2-ffhq256: optimisation, pre_logits"].hours / 4)
    assert rows["resampling pool stylegan2-ffhq256"].hours == pytest.approx(
        base["resampling pool stylegan2-ffhq256"].hours / 2)
    evals = pe.evaluations(run["iterations"], run["eval_every"])
    draws = evals * run["eval_repeats"] * len(run["modes"])
    assert f"= {draws:,} draws" in rows["resampling stylegan2-ffhq256: evaluations"].work
    assert rows["pairs study sg3t-ffhq"].work.startswith("20,300 ")  # 20,000 + 1.5 % replacements
    assert rows["pairs study sg3t-metfaces"] == base["pairs study sg3t-metfaces"]


def test_evaluations_are_counted_as_the_run_loop_evaluates(tmp_path, monkeypatch):
    from fidlens.studies.resampling import run as resampling_run
    from fidlens.studies.resampling.modes import Mode

    rng = np.random.default_rng(0)
    bank = resampling_run.FeatureBank
    inputs = resampling_run.RunInputs(Mode("pre_logits"), bank(pool3=rng.normal(size=(40, 4))),
                                      bank(pool3=rng.normal(size=(60, 4))))
    calls = []

    def evaluate(self, w, iteration):
        calls.append(iteration)
        return {"fid": 1.0, "clip_fid": float("nan"), "kid_x1000": 0.0}

    monkeypatch.setattr(resampling_run.Evaluator, "evaluate", evaluate)
    monkeypatch.setattr("fidlens.studies.resampling.figures.plot_curves", lambda *a, **k: None)
    settings = resampling_run.ResamplingSettings(iterations=23, lr=1.0, eval_every=5, eval_samples=20, eval_repeats=1,
                                                 kid_subsets=2, kid_subset_size=10)
    resampling_run.ResamplingRun(inputs, settings, tmp_path / "run", progress=False, log=lambda m: None).run()
    assert calls == [0, 1, 5, 10, 15, 20, 23]
    assert pe.evaluations(23, 5) == len(calls)
    assert pe.evaluations(100_000, 500) == 202


def test_heatmap_seeds_shown_twice_are_explained_once(paper_config):
    study = paper_config["heatmaps"]["stylegan2-ffhq256"]
    seeds = set(study["seeds"])
    for first, rows, cols in study["grids"]:
        seeds |= set(range(first, first + rows * cols))
    row = _rows(Plan(paper_config))["heatmaps stylegan2-ffhq256: figures"]
    assert row.work.startswith(f"{len(seeds)} distinct seeds")


def test_sizes_come_from_the_config_never_the_disk(paper_config):
    config = copy.deepcopy(paper_config)
    assert pe.dataset_images(Plan(config), "ffhq1024") == 70_000  # expected_images; the ZIP is not read
    del config["datasets"]["ffhq1024"]["expected_images"]
    with pytest.raises(FidlensError, match=r"datasets\.ffhq1024"):
        pe.dataset_images(Plan(config), "ffhq1024")


def test_the_facts_the_estimate_keeps_agree_with_the_code():
    from fidlens.assets.registry import ASSETS
    from fidlens.detectors.inception import FEATURE_DIM, NUM_LOGITS

    assert (pe.POOL3_DIM, pe.NUM_LOGITS) == (FEATURE_DIM, NUM_LOGITS)
    described = {asset.filename: asset.description for asset in ASSETS}
    for filename, (arch, resolution) in pe.NETWORK_KINDS.items():
        assert f"{arch} " in described[filename] and f"{resolution}²" in described[filename], filename


def test_rendering_is_stable_and_shows_every_row(paper_config):
    plan, records = Plan(paper_config), pe.Records()
    text = pe.render(plan, records)
    assert text == pe.render(plan, records)
    est = pe.estimate(plan, records)
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| part")]
    assert len(table) == len(est.rows) + 1
    for line, row in zip(table, est.rows):
        assert line.startswith(f"| {row.part} |") and f"| {row.source}: " in line
    assert f"About **{est.hours:.0f} GPU-hours" in text and f"(range {est.low:.0f}–{est.high:.0f} h)" in text
    for assumption in pe.ASSUMPTIONS:
        assert f"`{assumption.name}` = " in text  # the paper config uses every one, each with its reason


def test_without_the_gpu_records_the_block_says_what_to_run(paper_config, tmp_path):
    shutil.copy(pe.RECORDS / "bench_frechet.json", tmp_path)
    text = pe.render(Plan(paper_config), pe.Records(tmp_path))
    assert text.startswith("The paper config's GPU hours cannot be estimated yet") and "gpu_check.py" in text
    assert text.count("\n") == 1
