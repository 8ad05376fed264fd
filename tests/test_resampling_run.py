"""Resampling runs: feature modes, evaluation, logs, resume, figures, and the skip messages."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from fidlens.core.errors import FidlensError
from fidlens.studies.resampling.modes import Mode, class_indicator, matched_features
from fidlens.studies.resampling.pool import attach_clip
from fidlens.studies.resampling.run import (
    FeatureBank,
    ResamplingRun,
    ResamplingSettings,
    RunInputs,
    require_logits,
)


def test_mode_tags_parse_and_validate():
    assert Mode.parse("top_n_N1") == Mode("top_n", 1) and Mode.parse("top_n_N1").tag == "top_n_N1"
    assert Mode.parse("pre_logits") == Mode("pre_logits") and not Mode("pre_logits").needs_logits
    assert Mode.parse("middle_n_N10").needs_logits
    for bad in ("top_n", "bottom_n_N1", "logits_N3"):
        with pytest.raises(FidlensError):
            Mode.parse(bad)


def test_top_n_and_middle_n_mark_the_right_classes(rng):
    logits = rng.normal(size=(5, 1008))
    top1 = class_indicator(logits, Mode("top_n", 1))
    assert (top1.sum(1) == 1).all() and (top1.argmax(1) == logits.argmax(1)).all()
    top3 = class_indicator(logits, Mode("top_n", 3))
    assert set(np.flatnonzero(top3[0])) == set(np.argsort(-logits[0])[:3])
    middle = class_indicator(logits, Mode("middle_n", 4))
    ranks = np.argsort(np.argsort(-logits[0]))  # rank of each class, 0 = largest
    assert sorted(ranks[np.flatnonzero(middle[0])]) == [502, 503, 504, 505]


def test_binary_modes_drop_columns_empty_in_either_set(rng):
    real_logits = np.zeros((4, 1008))
    real_logits[:, 7] = 5
    real_logits[:2, 9] = 6
    cand_logits = np.zeros((3, 1008))
    cand_logits[:, 9] = 5
    cand_logits[0, 11] = 9
    real, cand, kept = matched_features(Mode("top_n", 1), (np.zeros((4, 2)), real_logits), (np.zeros((3, 2)), cand_logits))
    assert list(kept) == [9]  # class 7 only among reals, 11 only among candidates
    assert real.shape == (4, 1) and cand.shape == (3, 1)


def _banks(rng, d=8, n=240):
    reals = FeatureBank(pool3=rng.normal(size=(n, d)))
    clean = rng.normal(size=(n, d))
    bad = rng.normal(size=(n, d)) * 2.5 + 3.0
    groups = np.array(["clean"] * n + ["bad"] * n)
    return reals, FeatureBank(pool3=np.concatenate([clean, bad]), groups=groups)


SMALL = dict(lr=10.0, eval_every=10, eval_samples=400, eval_repeats=2, seed=3, chunk_size=97, kid_subsets=5,
             kid_subset_size=100)


def _run(tmp_path, inputs, iterations, name="run", **kw):
    settings = ResamplingSettings(iterations=iterations, **SMALL)
    return ResamplingRun(inputs, settings, tmp_path / name, progress=False, log=lambda m: None, **kw)


@pytest.mark.slow
def test_run_lowers_fid_and_moves_weight_to_the_clean_candidates(tmp_path, rng):
    reals, candidates = _banks(rng)
    images = lambda i: np.full((8, 8, 3), 255 if i < 240 else 0, np.uint8)
    inputs = RunInputs(Mode("pre_logits"), reals, candidates, clip_skip_reason="CLIP-FID skipped: no weights at x.pt",
                       candidate_image=images)
    summary = _run(tmp_path, inputs, 30).run()
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").read_text().splitlines()))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 10, 20, 30]
    fids = [float(r["fid"]) for r in rows]
    assert fids[-1] < 0.5 * fids[0]
    assert float(rows[-1]["mass:clean"]) > 0.8 > 0.5 == pytest.approx(float(rows[0]["mass:clean"]))
    assert all(r["clip_fid"] == "nan" for r in rows)
    assert summary["clip_fid"] == "CLIP-FID skipped: no weights at x.pt"
    assert "clean 50.0% ->" in summary["sentence"]
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["iteration"] == 30
    for name in ("curves.png", "best_weights.npy", "grid_resampled.png", "grid_lowest.png", "grid_highest.png",
                 "summary.json", "checkpoint.npz"):
        assert (tmp_path / "run" / name).is_file(), name
    lowest = np.load(tmp_path / "run" / "best_weights.npy")
    assert lowest[:240].mean() > lowest[240:].mean()


def test_killed_run_resumes_with_identical_results(tmp_path, rng):
    reals, candidates = _banks(rng)
    inputs = RunInputs(Mode("pre_logits"), reals, candidates)
    straight = _run(tmp_path, inputs, 30, name="straight")
    straight.run()
    first = _run(tmp_path, inputs, 10, name="resumed")  # "killed" after its checkpoint at iteration 10
    first.run()
    second = _run(tmp_path, inputs, 30, name="resumed")
    second.run()
    assert second.optimizer.iteration == 30
    assert torch.equal(second.optimizer.w, straight.optimizer.w)
    def strip(rows):  # timings differ between runs; NaN (no CLIP) compares equal to itself here
        return [{k: "nan" if v != v else v for k, v in r.items() if k not in ("elapsed_s", "peak_memory_mb")}
                for r in rows]

    assert strip(second.rows) == strip(straight.rows)
    assert (tmp_path / "resumed" / "log.csv").read_text().count("\n") == len(straight.rows) + 1


def test_checkpoint_of_other_inputs_is_not_reused(tmp_path, rng):
    reals, candidates = _banks(rng)
    _run(tmp_path, RunInputs(Mode("pre_logits"), reals, candidates), 10).run()
    other = FeatureBank(pool3=candidates.pool3 + 1.0, groups=candidates.groups)
    messages = []
    run = ResamplingRun(RunInputs(Mode("pre_logits"), reals, other), ResamplingSettings(iterations=10, **SMALL),
                        tmp_path / "run", progress=False, log=messages.append)
    run.run()
    assert any("starting over" in m for m in messages)


def test_logit_modes_are_skipped_with_a_reason_and_run_with_logits(tmp_path, rng):
    reals, candidates = _banks(rng, d=8, n=60)
    message = require_logits(Mode("top_n", 1), reals, candidates, detector_name="default_1.pt")
    assert "skipped" in message and "default_1.pt" in message and "inception-2015-12-05.pt" in message
    reals.logits = rng.normal(size=(60, 1008))
    candidates.logits = rng.normal(size=(120, 1008))
    assert require_logits(Mode("top_n", 1), reals, candidates) is None
    run = _run(tmp_path, RunInputs(Mode("top_n", 5), reals, candidates), 10)
    summary = run.run()
    assert summary["kept_feature_columns"] <= 1008 and (tmp_path / "run" / "class_histogram.png").is_file()


def test_clip_skip_messages(tmp_path, rng):
    reals, candidates = _banks(rng, n=10)
    image = lambda i: np.zeros((8, 8, 3), np.uint8)
    assert attach_clip(reals, candidates, None, image, image).startswith("CLIP-FID skipped: no weights configured")
    missing = tmp_path / "ViT-B-32.pt"
    assert attach_clip(reals, candidates, str(missing), image, image) == f"CLIP-FID skipped: no weights at {missing}"
    assert reals.clip is None


def test_clip_fid_is_computed_when_weights_exist(tmp_path, rng):
    from fidlens.detectors.clip_encoder import ClipVisionTransformer

    torch.manual_seed(0)
    tiny = ClipVisionTransformer(input_resolution=32, patch_size=16, width=64, layers=1, heads=1, output_dim=8)
    torch.save({f"visual.{k}": v for k, v in tiny.state_dict().items()}, tmp_path / "clip.pt")
    reals, candidates = _banks(rng, n=40)
    real_images = lambda i: rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    cand_images = lambda i: np.full((20, 20, 3), 0 if i < 40 else 255, np.uint8)
    assert attach_clip(reals, candidates, str(tmp_path / "clip.pt"), real_images, cand_images) is None
    assert reals.clip.shape == (40, 8) and candidates.clip.shape == (80, 8)
    summary = _run(tmp_path, RunInputs(Mode("pre_logits"), reals, candidates), 10).run()
    assert summary["clip_fid"] == "computed" and np.isfinite(summary["best"]["clip_fid"])


def test_few_samples_is_one_plain_note_per_message_not_a_warning(tmp_path, rng, recwarn):
    """N < d for the reals and for every evaluation draw: said once each in the run's log."""
    reals, candidates = FeatureBank(pool3=rng.normal(size=(20, 30))), FeatureBank(pool3=rng.normal(size=(40, 30)))
    messages = []
    settings = ResamplingSettings(iterations=4, lr=1.0, eval_every=2, eval_samples=25, eval_repeats=2,
                                  kid_subsets=2, kid_subset_size=10)
    ResamplingRun(RunInputs(Mode("pre_logits"), reals, candidates), settings, tmp_path, progress=False,
                  log=messages.append).run()
    notes = [m for m in messages if m.startswith("note: covariance is singular")]
    assert sorted(notes) == sorted(set(notes)) and len(notes) == 2  # N=20 reals, N=25 per draw
    assert any("N=20 < d=30" in m for m in notes) and any("N=25 < d=30" in m for m in notes)
    assert not [w for w in recwarn if "singular" in str(w.message)]
