"""Resampling's control feature space: any registered detector, its FID per draw, the plan's files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from fidlens.core.errors import FidlensError
from fidlens.metrics.stats import FeatureSet
from fidlens.studies.resampling.control import CLIP_SPACE, control_space
from fidlens.studies.resampling.inputs import FeatureBank, RunInputs
from fidlens.studies.resampling.modes import Mode
from fidlens.studies.resampling.optimizer import draw_indices
from fidlens.studies.resampling.pool import control_from_files
from fidlens.studies.resampling.run import Evaluator, ResamplingRun, ResamplingSettings
from fidlens.workflow.config import ConfigError, load_config
from fidlens.workflow.targets import Plan

REPO = Path(__file__).resolve().parents[1]
HOME = "/fidlens-home"
POOL = ("comparison", "blur1", "noise1", "occlusion1")


def brute_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of two row sets, written out with scipy's sqrtm (not fidlens' eigenvalue route)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def banks(rng: np.random.Generator) -> tuple[FeatureBank, FeatureBank]:
    reals = FeatureBank(pool3=rng.normal(size=(40, 6)), control=rng.normal(size=(40, 3)))
    candidates = FeatureBank(pool3=rng.normal(0.3, 1.2, size=(90, 6)), control=rng.normal(0.5, 1.0, size=(90, 3)),
                             groups=np.repeat(["a", "b", "c"], 30))
    return reals, candidates


def test_the_control_fid_of_a_draw_is_the_fid_of_the_same_rows_of_the_control_features():
    rng = np.random.default_rng(7)
    reals, candidates = banks(rng)
    space = control_space("pixels")
    inputs = RunInputs(Mode("pre_logits"), reals, candidates, control=space)
    settings = ResamplingSettings(eval_samples=50, eval_repeats=2, seed=3, kid_subsets=2, kid_subset_size=20)
    evaluator = Evaluator(inputs, settings)
    w = rng.normal(size=90)
    metrics = evaluator.evaluate(w, 10)
    assert set(metrics) == {"fid", "pixels_fid", "kid_x1000"}
    expected = []
    for rep in range(2):  # the evaluation's own seeds: the same draws, measured here independently
        indices = draw_indices(torch.as_tensor(w), 50, settings.seed * 1_000_003 + 10 * 101 + rep)
        expected.append(brute_fid(reals.control, candidates.control[indices]))
    np.testing.assert_allclose(metrics["pixels_fid"], min(expected), rtol=1e-8)
    assert not np.isclose(metrics["pixels_fid"], metrics["fid"])  # another space, not FID again
    baseline = evaluator.evaluate(None, 0)  # the uniform draw: without replacement
    uniform = [brute_fid(reals.control, candidates.control[
        np.random.default_rng(settings.seed * 1_000_003 + rep).choice(90, size=50, replace=False)]) for rep in range(2)]
    np.testing.assert_allclose(baseline["pixels_fid"], min(uniform), rtol=1e-8)


def test_the_log_summary_and_sentence_name_the_control_space(tmp_path):
    rng = np.random.default_rng(1)
    reals, candidates = banks(rng)
    inputs = RunInputs(Mode("pre_logits"), reals, candidates, control=control_space("pixels", "8"))
    settings = ResamplingSettings(iterations=2, lr=1.0, eval_every=1, eval_samples=30, eval_repeats=1,
                                  kid_subsets=2, kid_subset_size=10)
    summary = ResamplingRun(inputs, settings, tmp_path, progress=False, log=lambda _: None).run()
    with open(tmp_path / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:5] == ["iteration", "loss", "fid", "pixels_fid", "kid_x1000"] and "clip_fid" not in rows[0]
    assert all(np.isfinite(float(row["pixels_fid"])) for row in rows)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["pixels_fid"] == "computed" and saved["control_detector"]["label"] == "pixels-FID (8×8 grey pixels)"
    assert "pixels-FID (8×8 grey pixels)" in summary["sentence"]


def test_control_spaces_are_named_by_their_detector():
    assert control_space("pixels").label == "pixels-FID (16×16 grey pixels)"
    clip = control_space("clip", "/w/ViT-B-32.pt")
    assert (clip.column, clip.title, clip.label) == ("clip_fid", "CLIP-FID", "CLIP-FID (CLIP ViT-B/32, ViT-B-32.pt)")
    assert control_space("precomputed", "emb/dinov2-vitl14").label == \
        "precomputed-FID (precomputed embeddings, dinov2-vitl14)"
    assert CLIP_SPACE.column == "clip_fid"  # no control configured: the log's column as it always was
    with pytest.raises(FidlensError, match="from 2 to 64"):
        control_space("pixels", "99")


def test_control_files_must_match_the_banks_and_come_from_the_control_detector(tmp_path, rng):
    reals, candidates = FeatureBank(pool3=rng.normal(size=(4, 3))), FeatureBank(pool3=rng.normal(size=(6, 3)))
    files = {}
    for name, count, made_by in (("r", 4, "pixels"), ("p", 6, "pixels"), ("other", 6, "clip")):
        meta = {"num_images": count, "detector_spec": {"name": made_by}}
        FeatureSet(features=rng.normal(size=(count, 2)).astype(np.float32), meta=meta).save(tmp_path / f"{name}.npz")
        files[name] = str(tmp_path / f"{name}.npz")
    pixels = {"name": "pixels", "weights": "default"}
    assert control_from_files(reals, candidates, pixels, [files["r"]], [files["p"]]) is None
    np.testing.assert_array_equal(candidates.control, FeatureSet.load(files["p"]).features)
    assert candidates.clip is candidates.control  # the older name reads the same array
    with pytest.raises(FidlensError, match="holds clip features; the control detector is pixels"):
        control_from_files(reals, candidates, pixels, [files["r"]], [files["other"]])
    assert control_from_files(reals, candidates, None, [], []).startswith("CLIP-FID skipped")


# --- the plan ----------------------------------------------------------------------------------

def demo_config() -> dict:
    return load_config(REPO / "config" / "demo.yaml")


def test_the_demo_plan_reads_pixels_features_made_once_per_set():
    plan = Plan(demo_config(), home=HOME)
    job = plan.resampling_job("demo", "pre_logits")
    assert job.params["control"] == {"name": "pixels", "weights": "8", "label": "pixels-FID (8×8 grey pixels)"}
    assert job.inputs["real_control"] == ["results/demo/resampling/pixels/reference.npz"]
    assert job.inputs["pool_control"] == [f"results/demo/resampling/pixels/{name}.npz" for name in POOL]
    assert "control_weights" not in job.inputs  # pixels has no weights file
    made = plan.control_feature_jobs()  # one job measures every set the runs read, each once
    assert [item["out"] for item in made] == job.inputs["real_control"] + job.inputs["pool_control"]
    assert [item["source"] for item in made] == [f"results/demo/data/{name}" for name in ("reference", *POOL)]
    assert all(item["detector"] == {"name": "pixels", "weights": "8"} for item in made)
    again = plan.resampling_job("demo", "top_n_N1").inputs  # every mode reads the same files
    assert again["real_control"] == job.inputs["real_control"] and again["pool_control"] == job.inputs["pool_control"]


def test_a_generated_pool_gets_its_control_features_in_the_same_pass():
    config = demo_config()
    config["generators"]["big"] = dict(config["generators"]["demo"])
    config["resampling"]["gen"] = {**config["resampling"]["demo"], "pool": [],
                                   "generator": {"name": "big", "num_images": 50, "latent_seed": 1},
                                   "control_detector": {"name": "pixels", "weights": "12"}}
    plan = Plan(config, home=HOME)
    inputs = plan.resampling_job("gen", "pre_logits").inputs
    folder = "results/demo/resampling/pools/big_n50_z1"
    assert inputs["pool"] == [f"{folder}/inception.npz"] and inputs["pool_control"] == [f"{folder}/control.npz"]
    assert plan.generated_pool_params("big", "50", "1")["detectors"]["control"] == {"name": "pixels", "weights": "12"}
    with pytest.raises(ConfigError, match=r"the control features of dataset reference are read by runs with "
                                          r"different control detectors \(pixels 12, pixels 8\)"):
        plan.control_feature_jobs()  # two sizes of pixels for the same reals: refused, not overwritten


def test_clip_weights_is_the_clip_control_and_precomputed_reads_a_folder(tmp_path):
    config = demo_config()
    config["resampling"]["demo"].update(control_detector=None, clip_weights="default")
    job = Plan(config, home=HOME).resampling_job("demo", "pre_logits")
    assert job.params["control"]["name"] == "clip" and job.inputs["control_weights"] == f"{HOME}/weights/ViT-B-32.pt"
    assert job.inputs["real_control"] == ["results/demo/resampling/clip/reference.npz"]
    (tmp_path / "reference.npz").write_bytes(b"")
    config["resampling"]["demo"].update(control_detector={"name": "precomputed", "weights": str(tmp_path)},
                                        clip_weights=None)
    made = {item["dataset"]: item for item in Plan(config, home=HOME).control_feature_jobs()}
    assert made["reference"]["source"] == f"{tmp_path}/reference.npz" and made["blur1"]["source"] == \
        f"{tmp_path}/blur1.npy"
    assert made["reference"]["out"] == "results/demo/resampling/precomputed/reference.npz"


@pytest.mark.parametrize("control, clip, message", [
    ({"name": "dinov9"}, None,
     "config resampling.demo.control_detector: unknown detector 'dinov9'; available: clip, inception, pixels, "
     "precomputed"),
    ({"name": "pixels", "weights": "1"}, None,
     "config resampling.demo.control_detector: the pixels detector's size must be from 2 to 64, got 1"),
    ({"name": "pixels"}, "default",
     "config resampling.demo: clip_weights and control_detector both name the control space; keep one "
     "(clip_weights: default is control_detector: {name: clip, weights: default})"),
])
def test_the_config_refuses_a_bad_control_in_one_line(control, clip, message):
    config = demo_config()
    config["resampling"]["demo"].update(control_detector=control, clip_weights=clip)
    problems = []
    plan = Plan(config, home=HOME, on_problem=problems.append)
    with pytest.raises(ConfigError):
        plan.resampling_job("demo", "pre_logits")
    assert problems == [message] and "\n" not in message
    assert plan.control_feature_jobs() == []  # building the DAG for other targets does not stop on it


def test_a_checkpoint_of_other_control_features_is_not_resumed(tmp_path):
    rng = np.random.default_rng(2)
    reals, candidates = banks(rng)
    settings = ResamplingSettings(iterations=2, lr=1.0, eval_every=1, eval_samples=30, eval_repeats=1,
                                  kid_subsets=2, kid_subset_size=10)
    ResamplingRun(RunInputs(Mode("pre_logits"), reals, candidates, control=control_space("pixels")), settings,
                  tmp_path, progress=False, log=lambda _: None).run()
    candidates.control = candidates.control + 1.0  # the same pool measured by another control space
    said = []
    ResamplingRun(RunInputs(Mode("pre_logits"), reals, candidates, control=control_space("pixels")), settings,
                  tmp_path, progress=False, log=said.append).run()
    assert any("not resuming" in line for line in said) and not any("resumed at" in line for line in said)


def test_a_generated_pool_is_measured_by_the_pixels_control_in_the_generation_pass():
    from conftest import ORL

    from fidlens.detectors.pixels import grey_pixels
    from fidlens.detectors.registry import load_detector
    from fidlens.extraction.pipeline import GenerationSettings
    from fidlens.generators.generate import latent_batches
    from fidlens.generators.ppca import fit_ppca
    from fidlens.studies.resampling.pool_features import featurise_generated_pool, pool_z

    G = fit_ppca(ORL, z_dim=8, resolution=16)
    generation = GenerationSettings(num_images=7, latent_seed=3)
    sets = featurise_generated_pool(G, {"control": load_detector({"name": "pixels", "weights": "4"}, device="cpu")},
                                    generation, generator_path="g.pt", generator_sha256="c" * 64, batch_size=3,
                                    progress=False)
    images = torch.cat(list(latent_batches(G, pool_z(7, 3, G.z_dim), batch_size=7)))  # the same rows, at once
    expected = np.stack([grey_pixels(image.numpy(), 4) for image in images]).astype(np.float32)
    np.testing.assert_array_equal(sets["control"].features, expected)
    assert sets["control"].meta["detector_spec"]["name"] == "pixels" and sets["control"].features.shape == (7, 16)
