"""Published resampling numbers beside ours: config key → plan → script → summary.json, curves, caption.

The release's reference run (pre_logits, iterations 1 and 500) was a YAML comment; now it is the
`resampling.NAME.published` key. These tests follow it through every place it must show up, and
check that a run without it behaves exactly as before (the demo's case).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import yaml
from conftest import REPO
from test_report import CAPTIONS, render_caption, shipped_plan

from fidlens.studies.resampling import figures
from fidlens.studies.resampling.modes import Mode
from fidlens.studies.resampling.run import FeatureBank, ResamplingRun, ResamplingSettings, RunInputs
from fidlens.workflow.config import ConfigError, prepare
from fidlens.workflow.targets import Plan

PAPER_RUN = "stylegan2-ffhq256"
# The release README's reference output for pre_logits (seed 000, lines 26-32; METHODS.md line 109).
RELEASE = {"source": "release", "iterations": [1, 500], "loss": [4.95917, 3.61191], "fid": [5.25, 3.96],
           "clip_fid": [2.75, 2.69]}


def paper_config() -> dict:
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def plan_with_published(published: dict) -> Plan:
    config = paper_config()
    config["resampling"][PAPER_RUN]["published"] = published
    prepare(config)
    return Plan(config, home="/fidlens-home")


# --- config and plan ---------------------------------------------------------------------------


def test_the_paper_plan_hands_the_release_numbers_to_the_pre_logits_job_only():
    plan = shipped_plan("paper.yaml")
    assert plan.resampling_job(PAPER_RUN, "pre_logits").params["published"] == RELEASE
    for mode in ("top_n_N1", "middle_n_N1", "logits"):
        assert plan.resampling_job(PAPER_RUN, mode).params["published"] is None
    assert (REPO / "config" / "paper.yaml").read_text().count("4.95917") == 1  # the key, no comment repeating it


def test_the_demo_plan_has_no_published_numbers():
    plan = shipped_plan("demo.yaml")
    for mode in plan.resampling["demo"]["modes"]:
        assert plan.resampling_job("demo", mode).params["published"] is None


def test_source_defaults_to_release_and_only_given_metrics_are_passed():
    plan = plan_with_published({"pre_logits": {"iterations": [1], "fid": [5.25]}})
    assert plan.resampling_published(PAPER_RUN, "pre_logits") == {"iterations": [1], "fid": [5.25],
                                                                  "source": "release"}


def test_published_values_for_a_mode_the_run_lacks_stop_the_plan():
    plan = plan_with_published({"top_n_N3": {"iterations": [1], "fid": [5.0]}})
    with pytest.raises(ConfigError, match=r"resampling\.stylegan2-ffhq256\.published: 'top_n_N3' is not a known "
                                          r"mode of this run"):
        plan.resampling_job(PAPER_RUN, "pre_logits")


def test_a_list_that_does_not_fit_the_iterations_stops_the_plan():
    plan = plan_with_published({"pre_logits": {"iterations": [1, 500], "fid": [5.25]}})
    with pytest.raises(ConfigError, match=r"published\.pre_logits\.fid: 1 value\(s\) for 2 iteration\(s\)"):
        plan.resampling_job(PAPER_RUN, "logits")


def test_the_schema_refuses_a_malformed_entry():
    config = paper_config()
    config["resampling"][PAPER_RUN]["published"] = {"pre_logits": {"fid": [5.25]}}  # no iterations
    with pytest.raises(ConfigError):
        prepare(config)
    config["resampling"][PAPER_RUN]["published"] = {"pre_logits": {"iterations": [1], "kid": [1.0]}}
    with pytest.raises(ConfigError):
        prepare(config)


# --- the run: summary.json ------------------------------------------------------------------------


def _inputs(seed: int = 0) -> RunInputs:
    rng = np.random.default_rng(seed)
    reals = FeatureBank(pool3=rng.normal(size=(120, 6)))
    candidates = FeatureBank(pool3=np.concatenate([rng.normal(size=(120, 6)), rng.normal(size=(120, 6)) * 2 + 2]))
    return RunInputs(Mode("pre_logits"), reals, candidates)


SETTINGS = dict(iterations=10, lr=10.0, eval_every=5, eval_samples=200, eval_repeats=1, seed=1, chunk_size=64,
                kid_subsets=3, kid_subset_size=50)


def _run(tmp_path, name: str, published: dict | None) -> tuple[dict, list[dict]]:
    run = ResamplingRun(_inputs(), ResamplingSettings(**SETTINGS), tmp_path / name, progress=False,
                        log=lambda message: None, published=published)
    run.run()
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
    return summary, rows


def test_summary_carries_the_published_values_beside_ours(tmp_path):
    published = {"source": "release", "iterations": [1, 7, 10], "fid": [5.25, 4.5, 3.96], "loss": [1.0, 0.9, 0.8]}
    summary, rows = _run(tmp_path, "with", published)
    by_iteration = {row["iteration"]: row for row in rows}
    assert sorted(by_iteration) == [0, 1, 5, 10]
    entry = summary["published"]
    assert {key: entry[key] for key in published} == published
    # ours at the same iterations, from the log; iteration 7 was never evaluated
    assert entry["ours"]["fid"] == [by_iteration[1]["fid"], None, by_iteration[10]["fid"]]
    assert entry["ours"]["loss"] == [by_iteration[1]["loss"], None, by_iteration[10]["loss"]]
    assert set(entry["ours"]) == {"fid", "loss"}
    assert "published (release) FID 5.25 (iteration 1), 4.50 (iteration 7), 3.96 (iteration 10)" in summary["sentence"]


def test_without_published_values_the_run_is_unchanged(tmp_path):
    """Published numbers never enter the computation: the log is the same, the summary says null."""
    with_values, rows_with = _run(tmp_path, "with", RELEASE)
    without, rows_without = _run(tmp_path, "without", None)
    assert without["published"] is None and "published" not in without["sentence"]

    def strip(rows):
        return [{k: v for k, v in row.items() if k not in ("elapsed_s", "peak_memory_mb")} for row in rows]

    assert strip(rows_with) == strip(rows_without)
    same = {k for k in without if k not in ("published", "sentence", "baseline", "best", "last")}
    assert {k: with_values[k] for k in same} == {k: without[k] for k in same}
    assert with_values["sentence"].startswith(without["sentence"])
    # the release's iteration 500 lies beyond this 10-iteration run: ours is null there
    assert with_values["published"]["ours"]["fid"] == [rows_with[1]["fid"], None]


def test_a_skipped_mode_keeps_its_published_values_in_the_summary(tmp_path):
    from fidlens.metrics.stats import FeatureSet

    spec = importlib.util.spec_from_file_location("resample_script", REPO / "scripts" / "resample.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(0)
    files = []
    for name in ("reals", "pool"):
        path = tmp_path / f"{name}.npz"
        FeatureSet(features=rng.normal(size=(4, 3)), meta={"num_images": 4}).save(path)  # no logits
        files.append(str(path))
    published = {"source": "release", "iterations": [1], "fid": [9.0]}
    out = tmp_path / "out"
    script.main([files[0]], [], [files[1]], [], ["pool"], None, "top_n_N1", {}, None, "x.pt", str(out), "cpu",
                published)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] and summary["published"] == published


# --- the curves -------------------------------------------------------------------------------------


def _curve_axes(monkeypatch, tmp_path, rows, **kw) -> dict[str, object]:
    """Draw the curves and return {panel title: axes}, caught before the figure is saved and closed."""
    caught = []
    real_save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: caught.append({ax.get_title(): ax for ax in fig.axes})
                        or real_save(fig, path))
    figures.plot_curves(rows, tmp_path / "curves.png", title="t", **kw)
    assert (tmp_path / "curves.png").is_file()
    return caught[0]


def _rows(with_clip: bool = True) -> list[dict]:
    nan = float("nan")
    return [{"iteration": i, "loss": 5.0 - i / 200, "fid": 6.0 - i / 200, "clip_fid": 3.0 - i / 1000 if with_clip else nan,
             "kid_x1000": 2.0} for i in (0, 1, 250, 500)]


def _published_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_label().startswith("published")]


def test_curves_mark_the_published_values_as_hollow_points(monkeypatch, tmp_path):
    axes = _curve_axes(monkeypatch, tmp_path, _rows(), published=RELEASE)
    for title, key in (("FID", "fid"), ("CLIP-FID", "clip_fid")):
        (line,) = _published_lines(axes[title])
        assert line.get_label() == "published (release)"
        assert list(line.get_xdata()) == [1, 500] and list(line.get_ydata()) == RELEASE[key]
        assert line.get_marker() == "o" and line.get_markerfacecolor() == "none" and line.get_linestyle() == "None"
        assert "published (release)" in [text.get_text() for text in axes[title].get_legend().get_texts()]
    assert _published_lines(axes["KID × 1000"]) == []  # nothing published for KID


def test_curves_without_published_values_are_drawn_as_before(monkeypatch, tmp_path):
    plain = _curve_axes(monkeypatch, tmp_path, _rows())
    none = _curve_axes(monkeypatch, tmp_path, _rows(), published=None)
    marked = _curve_axes(monkeypatch, tmp_path, _rows(), published=RELEASE)

    def lines(axes):
        return {title: [(line.get_label(), list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]
                for title, ax in axes.items()}

    assert lines(plain) == lines(none)
    assert all(_published_lines(ax) == [] for ax in plain.values())
    for title in ("FID", "CLIP-FID"):  # the marks are added on top; every other line stays
        assert lines(marked)[title][: len(lines(plain)[title])] == lines(plain)[title]


def test_no_mark_without_a_panel(monkeypatch, tmp_path):
    """CLIP-FID not computed: its published values have no panel to sit on, and nothing fails."""
    axes = _curve_axes(monkeypatch, tmp_path, _rows(with_clip=False), published=RELEASE)
    assert set(axes) == {"FID", "KID × 1000"}
    assert len(_published_lines(axes["FID"])) == 1


# --- the report caption ---------------------------------------------------------------------------


def _resample_caption(plan: Plan, run: str, mode: str) -> str:
    params = plan.resampling_job(run, mode).params
    return render_caption(CAPTIONS["resample"][1], "resample", params, {"run": run, "mode": mode}, plan.config)


def test_the_caption_gives_the_published_values_when_the_mode_has_them():
    plan = shipped_plan("paper.yaml")
    text = _resample_caption(plan, PAPER_RUN, "pre_logits")
    assert ("iteration 1: loss 4.95917, FID 5.25, CLIP-FID 2.75; "
            "iteration 500: loss 3.61191, FID 3.96, CLIP-FID 2.69.") in text
    assert "Published values (release)" in text and "summary.json is beside the log" in text
    assert "Published values" not in _resample_caption(plan, PAPER_RUN, "logits")
    assert "Published values" not in _resample_caption(shipped_plan("demo.yaml"), "demo", "pre_logits")
