"""Issue 15, items 1, 2, 4 and 6: the release's network, the pinned FFHQ-256 recipe, Table 1 and
Fig. 4 of the pairs study, and a resampling pool generated and featurised once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ORL, write_images

from fidlens.core.errors import DatasetError, FidlensError
from fidlens.detectors.base import DetectorSpec
from fidlens.extraction.pipeline import GenerationSettings
from fidlens.metrics.stats import FeatureSet
from fidlens.workflow.config import load_config
from fidlens.workflow.targets import Plan, load_plan

REPO = Path(__file__).resolve().parents[1]
HOME = "/fidlens-home"


def plan_of(config: dict) -> Plan:
    return Plan(config, home=HOME)


# --- 1. the release's snapshot ----------------------------------------------------------------

def test_the_release_snapshot_is_the_paper_default_and_placed_by_hand():
    from fidlens.assets.registry import asset_by_name, asset_for_target, dataset_instructions

    plan = load_plan(REPO / "config" / "paper.yaml", home=HOME)
    network = plan.generator_network("stylegan2-ffhq256")
    asset = asset_for_target(network)
    assert asset is asset_by_name("stylegan2-ffhq256-release")
    assert asset.filename == "ffhq-fid50k_5.30-snapshot-022608.pkl" and asset.method == "manual"
    assert asset.sha256 is None and asset.checksum == "unknown: recorded on first use"
    message = dataset_instructions(network)
    assert "119HvnQ5nwHl0_vUTEFWQNk4bwYjoXTrC" in message and f"save the file as {network}" in message
    assert "place" in message and f"{network}.sha256.json" in message
    # the NVIDIA file stays as a documented (commented) alternative that the registry can download
    text = (REPO / "config" / "paper.yaml").read_text()
    assert re.search(r"^\s*# network: resources/networks/stylegan2-ffhq-256x256\.pkl", text, re.M)
    assert asset_by_name("stylegan2-ffhq256").method == "url"
    assert plan.resampling_job("stylegan2-ffhq256", "pre_logits").inputs["network"] == network


def test_a_placed_network_gets_its_sha256_recorded_on_first_use(tmp_path, monkeypatch):
    from fidlens.assets.registry import asset_by_name, asset_status, network_identity, read_record
    from fidlens.assets.store import file_sha256
    from fidlens.workflow.provenance import describe_path

    monkeypatch.chdir(tmp_path)
    asset = asset_by_name("stylegan2-ffhq256-release")
    path = Path(asset.target)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not really a pickle" * 100)
    first = network_identity(path)
    assert first["sha256"] == file_sha256(path) and first["asset"] == asset.name and first["file"] == path.name
    assert "recorded on first use" in first["sha256_source"]
    assert read_record(path)["sha256"] == first["sha256"]
    again = network_identity(tmp_path / path)  # absolute paths name the same asset
    assert again["sha256"] == first["sha256"] and again["sha256_source"].startswith("record ")
    # provenance of any output made with it names its sha256 even when it is too large to hash there
    entry = describe_path(path, hash_limit=10)
    assert entry["sha256"] == first["sha256"] and f"{path.name}.sha256.json" in entry["sha256_source"]
    Path(f"{path}.sha256.json").unlink()  # no record yet: provenance hashes the network file itself
    entry = describe_path(path, hash_limit=10)
    assert entry["sha256"] == first["sha256"] and "network file" in entry["sha256_source"]
    assert asset_status(asset, root=tmp_path, verify=True).state == "verified"
    path.write_bytes(b"another file")  # a changed file is hashed, not matched to the old record
    changed = network_identity(path)
    assert changed["sha256"] == file_sha256(path) and "recorded another file" in changed["sha256_source"]


# --- 2. the FFHQ-256 recipe --------------------------------------------------------------------

def _squares(rng, size: int, count: int) -> list[np.ndarray]:
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def test_the_recipe_is_pinned_and_recorded_in_the_zip(tmp_path, rng):
    from fidlens.data.zipbuild import PILLOW_ROUNDING, build_stylegan_zip, read_zip_metadata

    source = write_images(tmp_path / "src", _squares(rng, 64, 3))
    meta = build_stylegan_zip(source, tmp_path / "out.zip", resolution=16, resize_filter="lanczos",
                              source_resolution=64, progress=False)
    assert read_zip_metadata(tmp_path / "out.zip") == meta
    assert meta["source_resolution"] == 64 and meta["source_image_sizes"] == [[64, 64]]
    assert meta["resize_filter"] == "lanczos" and meta["rounding"] == PILLOW_ROUNDING
    assert meta["recipe"].startswith("64² sources → lanczos (Pillow) → 16²") and "half up" in meta["recipe"]
    with pytest.raises(DatasetError, match=r"is 64x64, but this recipe starts from 32x32 images"):
        build_stylegan_zip(source, tmp_path / "bad.zip", resolution=16, source_resolution=32, progress=False)
    native = build_stylegan_zip(source, tmp_path / "native.zip", progress=False)
    assert native["rounding"] is None and "native size" in native["recipe"]


class _MeanColour:
    """A tiny detector (mean and spread of each channel): the pipeline's contract without a network."""

    name = "meancolour"
    has_logits = False
    logits_dim = None
    feature_dim = 6
    reads_images = True
    supports_heatmaps = False
    resize = "none"

    def __init__(self, tag: str = "a"):
        self.spec = DetectorSpec("meancolour", tag)
        self.weights_name, self.weights_sha256 = f"{tag}.pt", tag * 64
        self.device = torch.device("cpu")
        self.calls = 0

    def to(self, device):
        return self

    def features(self, images, *, want_logits=False):
        self.calls += 1
        batch = images if isinstance(images, torch.Tensor) else torch.cat(images)
        x = batch.float()
        h, w = x.shape[2] // 2, x.shape[3] // 2
        parts = [x, x, x[:, :, :h], x[:, :, h:], x[:, :, :, :w], x[:, :, :, w:]]
        stats = [p.mean(dim=(1, 2, 3)) if i != 1 else p.std(dim=(1, 2, 3)) for i, p in enumerate(parts)]
        return {"features": torch.stack(stats, dim=1)}


@pytest.mark.filterwarnings("ignore:covariance is singular")
def test_the_recipe_travels_into_features_and_statistics(tmp_path, rng):
    from fidlens.data.zipbuild import build_stylegan_zip
    from fidlens.extraction.pipeline import (
        ExtractionSettings,
        compute_features,
        statistics_from_features,
    )

    source = write_images(tmp_path / "src", _squares(rng, 32, 4))
    made = build_stylegan_zip(source, tmp_path / "set.zip", resolution=8, source_resolution=32, progress=False)
    settings = ExtractionSettings(batch_size=2, workers=0, cache=str(tmp_path / "cache"), progress=False)
    for _ in range(2):  # computed, then served from the cache: both say how the set was made
        features = compute_features(tmp_path / "set.zip", _MeanColour(), settings=settings)
        assert features.meta["source"]["made_by"]["recipe"] == made["recipe"]
    stats = statistics_from_features(features)
    assert stats.meta["source"]["made_by"]["source_resolution"] == 32
    assert "made_by" not in compute_features(source, _MeanColour(), settings=settings).meta["source"]


def test_the_paper_config_builds_ffhq256_by_the_pinned_recipe():
    from fidlens.data.zipbuild import PILLOW_ROUNDING

    config = load_config(REPO / "config" / "paper.yaml")
    plan = Plan(config, home=HOME)
    assert plan.image_set_path("ffhq256") == plan.zip_path("ffhq256") and plan.max_images("ffhq256") == 50000
    assert plan.source_folder("zip-ffhq256") == plan.image_set_path("ffhq1024")
    assert plan.zip_options("ffhq256") == {"resolution": 256, "resize_filter": "lanczos", "source_resolution": 1024}
    rules = (REPO / "rules" / "datasets.smk").read_text()
    assert "recipe: {params.recipe}" in rules and PILLOW_ROUNDING  # the dry run's message (slow test below)


@pytest.mark.slow
def test_paper_dry_run_lists_the_snapshot_and_the_recipe(tmp_path):
    import subprocess
    import sys

    env_home = tmp_path / "home"
    result = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--configfile",
                             str(REPO / "config" / "paper.yaml"), "--directory", str(tmp_path), "--snakefile",
                             str(REPO / "Snakefile")], capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "FIDLENS_HOME": str(env_home)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "Cannot download resources/networks/ffhq-fid50k_5.30-snapshot-022608.pkl: place it by hand" in out
    assert re.search(r"Building results/paper/zips/ffhq256\.zip from resources/datasets/ffhq-1024x1024\.zip, "
                     r"recipe: 1024² sources → lanczos \(Pillow\) → 256²; Pillow uint8 resampling", out)
    for rule in ("generated_pool", "control_features", "pairs_table1", "pairs_figure4"):
        assert re.search(rf"^{rule}\s+1$", out, re.M), rule


# --- 4. Table 1 and Fig. 4 ---------------------------------------------------------------------

PUBLISHED_TABLE1 = {"sg3t-ffhq": 26, "sg3t-metfaces": 30, "sg3r-ffhq": 26, "sg3r-metfaces": 30,
                    "sg2ada-ffhq": 28, "sg2ada-metfaces": 19}  # seed 001, Table 1 (159 in all)


def test_paper_config_carries_table1_and_asks_for_fig4():
    plan = load_plan(REPO / "config" / "paper.yaml", home=HOME)
    counts = {model: study["published"]["pairs"] for model, study in plan.pairs.items()}
    assert counts == PUBLISHED_TABLE1 and sum(counts.values()) == 159
    targets = plan.pairs_targets()
    assert set(plan.pairs_table1().values()) <= set(targets)
    assert plan.pairs_figure4("sg2ada-metfaces")["figure"] in targets
    assert plan.pairs_table1_params()["networks"]["sg2ada-metfaces"] == "resources/networks/metfaces.pkl"
    demo = load_plan(REPO / "config" / "demo.yaml", home=HOME)  # the demo asks for neither
    assert not any("table1" in t or "figure4" in t for t in demo.all_targets())


def test_table1_sets_our_pair_counts_beside_the_published(tmp_path):
    from fidlens.studies.pairs.table1 import render_table1, table1_rows, write_table1_csv

    files = {}
    for model, count in (("sg2ada-metfaces", 3), ("mine", 2)):
        files[model] = tmp_path / f"{model}.yaml"
        files[model].write_text(yaml.safe_dump({"pairs": [{"bad": i, "good": f"{i}~1"} for i in range(count)]}))
    rows = table1_rows(files, {"sg2ada-metfaces": "resources/networks/metfaces.pkl", "mine": "x/my.pkl"},
                       {"sg2ada-metfaces": {"fid": 15.28, "pairs": 19}, "mine": None})
    assert [(r["model"], r["network"], r["pairs"], r["published_pairs"]) for r in rows] == [
        ("sg2ada-metfaces", "metfaces.pkl", 3, 19), ("mine", "my.pkl", 2, "")]
    markdown = render_table1(rows)
    assert "| sg2ada-metfaces | metfaces.pkl | 3 (19) |" in markdown and "| mine | my.pkl | 2 |" in markdown
    assert "| all | | 5 (19) |" in markdown
    write_table1_csv(rows, tmp_path / "t1.csv")
    assert (tmp_path / "t1.csv").read_text().splitlines()[1].startswith("sg2ada-metfaces,metfaces.pkl,3,19,")


@pytest.fixture(scope="module")
def ppca():
    from fidlens.generators.ppca import fit_ppca

    return fit_ppca(ORL, z_dim=8, resolution=16)


def test_fig4_shows_the_smallest_d_and_their_w_prime_images(ppca, tmp_path):
    from fidlens.generators.generate import synthesize_uint8, ws_for_latents
    from fidlens.studies.pairs.figure4 import figure4_images, figure4_indices, write_figure4
    from fidlens.studies.pairs.study_file import FORMAT, Study

    n = 30
    rng = np.random.default_rng(0)
    d = rng.normal(size=n)
    selected = np.argsort(d)[:5][::-1].copy()  # stored in any order: the figure sorts by d
    mean_bad, mean_good = rng.normal(size=8), rng.normal(size=8)
    study = Study({"d": d, "selected": selected, "mean_bad": mean_bad, "mean_good": mean_good,
                   "pool3": np.zeros((n, 2), np.float32)},
                  {"format": FORMAT, "settings": {"num_images": n, "latent_seed": 3, "noise_mode": "const"}})
    indices = figure4_indices(study, 3)
    np.testing.assert_array_equal(indices, np.argsort(d)[:3])
    top, bottom = figure4_images(ppca, study, indices)
    z = np.random.RandomState(3).randn(n, 8)[indices]
    ws = ws_for_latents(ppca, z)
    np.testing.assert_array_equal(top, synthesize_uint8(ppca, ws).permute(0, 2, 3, 1).numpy())
    shifted = (ws.double() + torch.from_numpy(mean_good - mean_bad)).float()
    np.testing.assert_array_equal(bottom, synthesize_uint8(ppca, shifted).permute(0, 2, 3, 1).numpy())
    assert not np.array_equal(top, bottom)
    write_figure4(study, indices, top, bottom, tmp_path / "fig4.png", tmp_path / "fig4.csv", tile=16)
    from PIL import Image

    assert Image.open(tmp_path / "fig4.png").size == (3 * 16 + 2 * 4, 2 * 16 + 4)
    lines = (tmp_path / "fig4.csv").read_text().splitlines()
    assert lines[0] == "column,index,d,selection_rank" and lines[1].split(",")[1] == str(indices[0])
    with pytest.raises(FidlensError):
        figure4_indices(study, 0)


# --- 6. the pool, generated and featurised once --------------------------------------------------

def _counting(G):
    """Count the images G synthesises (the pool must make each one once, whatever the detectors)."""
    made = {"images": 0}

    def seen(module, inputs, output):
        made["images"] += len(output)

    return made, G.synthesis.register_forward_hook(seen)


def test_the_pool_is_generated_once_for_every_detector(ppca):
    from fidlens.generators.generate import generated_features
    from fidlens.studies.resampling.pool_features import featurise_generated_pool

    made, hook = _counting(ppca)
    try:
        a, b = _MeanColour("a"), _MeanColour("b")
        generation = GenerationSettings(num_images=10, latent_seed=4)
        sets = featurise_generated_pool(ppca, {"inception": a, "clip": b}, generation, generator_path="g.pt",
                                        generator_sha256="f" * 64, batch_size=4, progress=False)
        assert made["images"] == 10 and a.calls == b.calls == 3  # one pass: 3 batches, each seen by both
        reference = generated_features(ppca, _MeanColour(), 10, 4, batch_size=4, progress=False)["features"]
        np.testing.assert_array_equal(sets["inception"].features, reference)  # what generated_features gives
        assert sets["clip"].meta["detector"] == "b.pt" and sets["inception"].meta["num_images"] == 10
        assert sets["inception"].meta["source"]["rows"] == [0, 10]
    finally:
        hook.remove()


def test_pool_shards_join_into_the_whole_pool(ppca):
    from fidlens.studies.resampling.pool_features import concatenate_parts, featurise_generated_pool

    generation = GenerationSettings(num_images=9, latent_seed=2)
    run = lambda rows: featurise_generated_pool(ppca, {"x": _MeanColour()}, generation, generator_path="g.pt",
                                                generator_sha256="e" * 64, rows=rows, batch_size=4,
                                                progress=False)["x"]
    whole = run(None)
    joined = concatenate_parts([run((0, 4)), run((4, 9))])
    np.testing.assert_array_equal(joined.features, whole.features)
    assert joined.meta["source"]["rows"] == [0, 9] and joined.meta["num_images"] == 9
    with pytest.raises(FidlensError, match="not consecutive"):
        concatenate_parts([run((0, 4)), run((5, 9))])
    with pytest.raises(FidlensError, match="not inside a pool"):
        run((3, 12))


def test_resampling_reads_clip_embeddings_from_files(tmp_path, rng):
    from fidlens.studies.resampling.inputs import FeatureBank
    from fidlens.studies.resampling.pool import clip_from_files

    reals, cands = FeatureBank(pool3=rng.normal(size=(5, 4))), FeatureBank(pool3=rng.normal(size=(7, 4)))
    assert clip_from_files(reals, cands, None, [], []).startswith("CLIP-FID skipped: no weights configured")
    files = []
    for name, count in (("r", 5), ("p1", 3), ("p2", 4)):
        FeatureSet(features=rng.normal(size=(count, 2)).astype(np.float32),
                   meta={"num_images": count}).save(tmp_path / f"{name}.npz")
        files.append(str(tmp_path / f"{name}.npz"))
    assert clip_from_files(reals, cands, "clip.pt", files[:1], files[1:]) is None
    assert reals.clip.shape == (5, 2) and cands.clip.shape == (7, 2)
    np.testing.assert_array_equal(cands.clip[3:], FeatureSet.load(files[2]).features)
    with pytest.raises(FidlensError, match="have 3 rows, their Inception features 7"):
        clip_from_files(reals, cands, "clip.pt", files[:1], files[1:2])


def test_clip_through_the_registry_gives_the_embeddings_of_before(tmp_path, rng):
    """The pool files come from the registry's clip detector on uint8 batches; the old per-mode path
    encoded lists of HWC images. Same preprocessing, same network: the same numbers."""
    from fidlens.detectors.clip_encoder import (
        ClipVisionTransformer,
        clip_features,
        load_clip_encoder,
    )
    from fidlens.detectors.registry import load_detector

    torch.manual_seed(0)
    tiny = ClipVisionTransformer(input_resolution=32, patch_size=16, width=64, layers=1, heads=1, output_dim=8)
    torch.save({f"visual.{k}": v for k, v in tiny.state_dict().items()}, tmp_path / "clip.pt")
    images = rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    before = clip_features(list(images), load_clip_encoder(tmp_path / "clip.pt"), batch_size=4, progress=False)
    detector = load_detector({"name": "clip", "weights": str(tmp_path / "clip.pt")}, device="cpu")
    now = detector.features(torch.from_numpy(images).permute(0, 3, 1, 2))["features"].numpy()
    np.testing.assert_allclose(now, before, rtol=1e-5, atol=1e-6)


def test_runs_with_clip_read_pool_files_and_the_demo_is_unchanged():
    demo = load_plan(REPO / "config" / "demo.yaml", home=HOME)
    job = demo.resampling_job("demo", "pre_logits")
    assert set(job.inputs) == {"reals", "pool", "real_control", "pool_control"}  # the demo's pixels control
    config = load_config(REPO / "config" / "demo.yaml")
    config["resampling"]["demo"].update(clip_weights="default", control_detector=None)
    config["generators"]["big"] = dict(config["generators"]["demo"])
    config["resampling"]["gen"] = {**config["resampling"]["demo"], "pool": [],
                                   "generator": {"name": "big", "num_images": 50, "latent_seed": 1}}
    plan = plan_of(config)
    images = plan.resampling_job("demo", "top_n_N1").inputs
    assert images["real_control"] == ["results/demo/resampling/clip/reference.npz"]
    assert images["pool_control"] == [f"results/demo/resampling/clip/{s}.npz"
                                   for s in ("comparison", "blur1", "noise1", "occlusion1")]
    generated = plan.resampling_job("gen", "pre_logits").inputs
    folder = "results/demo/resampling/pools/big_n50_z1"
    assert generated["pool"] == [f"{folder}/inception.npz"] and generated["pool_control"] == [f"{folder}/control.npz"]
    params = plan.generated_pool_params("big", "50", "1")
    assert params["detectors"]["control"] == {"name": "clip", "weights": f"{HOME}/weights/ViT-B-32.pt"}
    assert params["generation"]["num_images"] == 50 and params["detectors"]["inception"]["name"] == "inception"
    assert plan.resampling_control_spec(dataset="blur1")["weights"] == f"{HOME}/weights/ViT-B-32.pt"
    config["resampling"]["gen"]["clip_weights"] = "other/ViT.pt"
    config["resampling"]["gen"]["reals"] = "reference"
    with pytest.raises(Exception, match="different control detectors"):
        plan_of(config).resampling_control_spec(dataset="reference")


@pytest.mark.slow
def test_a_generated_pool_is_made_once_and_read_by_every_mode(tmp_path, default_weights):
    """End to end: the demo generator's pool with CLIP-FID; two modes, one generated_pool job."""
    import os
    import subprocess
    import sys

    from fidlens.detectors.clip_encoder import ClipVisionTransformer

    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    os.symlink(default_weights, home / "weights" / "default_1.pt")
    torch.manual_seed(0)
    tiny = ClipVisionTransformer(input_resolution=32, patch_size=16, width=64, layers=1, heads=1, output_dim=8)
    torch.save({f"visual.{k}": v for k, v in tiny.state_dict().items()}, tmp_path / "clip.pt")
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["demo"].update(orl_dir=str(ORL), enabled=False)
    config.update({section: {"sets": []} for section in ("attribution", "fid_ci", "fid_infinity", "prdc")})
    config.update(heatmaps={}, pairs={}, resampling={"gen": {
        "reals": "reference", "generator": {"name": "demo", "num_images": 40, "latent_seed": 1},
        "modes": ["pre_logits", "top_n_N1"], "iterations": 4, "lr": 1.0, "eval_every": 2, "eval_samples": 40,
        "eval_repeats": 1, "kid_subset_size": 20, "clip_weights": str(tmp_path / "clip.pt")}})
    (tmp_path / "gen.yaml").write_text(yaml.safe_dump(config))
    run = "results/demo/resampling/gen"
    result = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
                             "--cores", "2", "--configfile", str(tmp_path / "gen.yaml"), "--directory", str(tmp_path),
                             f"{run}/pre_logits/log.csv", f"{run}/top_n_N1/log.csv"],
                            capture_output=True, text=True, timeout=900, env={**os.environ, "FIDLENS_HOME": str(home)})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    pool = tmp_path / "results/demo/resampling/pools/demo_n40_z1"
    assert FeatureSet.load(pool / "control.npz").features.shape == (40, 8)
    assert FeatureSet.load(pool / "inception.npz").features.shape == (40, 2048)
    assert len(list((tmp_path / "logs/demo/resampling/pools").glob("*.log"))) == 1
    summary = json.loads((tmp_path / run / "pre_logits/summary.json").read_text())
    assert summary["clip_fid"] == "computed" and np.isfinite(summary["best"]["clip_fid"])
    assert summary["network"]["file"] == "demo.pt" and re.fullmatch(r"[0-9a-f]{64}", summary["network"]["sha256"])
    assert "skipped" in json.loads((tmp_path / run / "top_n_N1/summary.json").read_text())  # default_1.pt: no logits


def test_table1_and_fig4_captions_render_with_the_paper_config():
    from test_report import render_caption

    plan = load_plan(REPO / "config" / "paper.yaml", home=HOME)
    table = render_caption("pairs_table1.rst", "pairs_table1", plan.pairs_table1_params(), {}, dict(plan.config))
    assert "Table 1" in table and "sg2ada-metfaces resources/networks/metfaces.pkl" in table
    figure = render_caption("pairs_figure4.rst", "pairs_figure4",
                            {"images": 8, "which": "G_ema", "device": "auto"}, {"model": "sg2ada-metfaces"},
                            dict(plan.config))
    assert "the 8 automatically selected images" in figure and "50000 generated images" in figure
    rules = (REPO / "rules" / "paper_tables.smk").read_text()
    assert 'caption="../report/pairs_table1.rst"' in rules and 'caption="../report/pairs_figure4.rst"' in rules


def test_table2_rows_name_the_network_file_of_their_study(rng):
    from test_pairs import _synthetic_study

    from fidlens.metrics.stats import Statistics
    from fidlens.studies.pairs.table import study_row

    study, reference = _synthetic_study(rng, "shrink")
    assert study_row(study, Statistics.from_features(reference))["network"] is None  # studies of before
    study.meta["network"] = {"file": "metfaces.pkl", "sha256": "a" * 64}
    assert study_row(study, Statistics.from_features(reference))["network"]["file"] == "metfaces.pkl"
