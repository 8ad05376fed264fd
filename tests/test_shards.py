"""Sharded extraction (config shard_size, rules/shards.smk): the plan's shards, and shards merged
into exactly what the unsharded rules write (features and metadata equal, statistics within 1e-12).

A tiny deterministic detector (channel means, spreads and maxima) stands in for Inception, so these
run in seconds; the SLURM check (.ci/slurm-check) runs the real network through a real cluster.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import ORL, REPO
from test_workflow import job_counts, run_snakemake

from fidlens.core.errors import StatisticsError
from fidlens.extraction.pipeline import (
    ExtractionSettings,
    GenerationSettings,
    compute_features,
    compute_generated_features,
    statistics_from_features,
)
from fidlens.extraction.shards import (
    check_shards,
    generated_set_meta,
    image_set_meta,
    merge_features,
    statistics_from_moments,
)
from fidlens.generators.generate import generated_batches, latent_rows
from fidlens.generators.ppca import PPCAGenerator
from fidlens.metrics.moments import Moments, relative_difference
from fidlens.workflow.config import ConfigError, prepare
from fidlens.workflow.targets import Plan, load_plan

HOME = "/fidlens-home"
TOL = 1e-12


class TinyDetector:
    """Channel means, spreads and maxima of each image (9 features, 4 'logits'): no network, exact per image."""

    name = "tiny"
    feature_dim = 9
    has_logits = True
    logits_dim = 4
    resize = "none"
    weights_name = "tiny-v1"
    weights_sha256 = "2" * 64
    reads_images = True
    supports_heatmaps = False
    device = torch.device("cpu")

    def __init__(self):
        from fidlens.detectors.base import DetectorSpec

        self.spec = DetectorSpec("tiny", "v1")

    def to(self, device):
        return self

    def features(self, images, *, want_logits=False):
        batches = images if isinstance(images, list) else [images]
        rows = [torch.cat([b.double().mean(dim=(2, 3)), b.double().std(dim=(2, 3)), b.double().amax(dim=(2, 3))], 1)
                for b in batches]
        out = {"features": torch.cat(rows)}
        if want_logits:
            out["logits"] = out["features"][:, :4] * 0.5
        return out


def plan(config: dict) -> Plan:
    prepare(config)
    return Plan(config, home=HOME)


def faces(tmp_path, subjects=(1, 2, 3)):
    """A folder of ORL faces (PGMs straight from the repo) in sorted-name order."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for s in subjects:
        for path in sorted((ORL / f"s{s}").glob("*.pgm")):
            (folder / f"s{s:02d}_{path.name}").write_bytes(path.read_bytes())
    return folder


# --- the plan ----------------------------------------------------------------------------------


def test_shard_size_is_global_with_per_set_overrides(tmp_path):
    folder = faces(tmp_path)
    p = plan({"shard_size": 7, "datasets": {"a": {"path": str(folder)}, "b": {"path": str(folder), "shard_size": None},
                                             "c": {"path": str(folder), "shard_size": 4, "max_images": 10}},
              "generators": {"g": {"network": "g.pkl"}, "h": {"network": "h.pkl", "shard_size": None}}})
    assert p.sharded_names("datasets") == ["a", "c"] and p.sharded_names("generators") == ["g"]
    assert p.dataset_size("a") == 30 and p.dataset_size("c") == 10  # counted from the folder, capped
    assert p.dataset_shards("a") == [(0, 7), (7, 14), (14, 21), (21, 28), (28, 30)]
    assert p.dataset_shards("c") == [(0, 4), (4, 8), (8, 10)]
    files = p.dataset_shard_files("c")
    assert files["shards"] == [f"results/main/shards/datasets/c/shard{i:04d}.npz" for i in range(3)]
    assert files["moments"][2] == "results/main/shards/datasets/c/shard0002.moments.npz"
    assert p.dataset_shard_rows("a", "0004") == [28, 30]
    with pytest.raises(ConfigError, match="dataset a has 5 shard"):
        p.dataset_shard_rows("a", 5)
    assert p.generated_shards("g", 25) == [(0, 7), (7, 14), (14, 21), (21, 25)]
    assert p.generated_shard_files("g", 25, 3)["shards"][-1] == "results/main/shards/generated/g/n25_z3/shard0003.npz"
    import re

    pattern = re.compile(f"(?:{p.shard_pattern('datasets')})")
    assert pattern.fullmatch("a") and pattern.fullmatch("c") and not pattern.fullmatch("b")


def test_an_unsharded_config_matches_no_shard_rule():
    p = load_plan(REPO / "config" / "demo.yaml", home=HOME)
    assert p.config["shard_size"] is None and p.sharded_names("datasets") == p.sharded_names("generators") == []
    assert p.shard_pattern("datasets") == p.shard_pattern("generators") == "(?!)" and p.shard_jobs() == []


def test_a_set_not_placed_yet_is_planned_from_max_or_expected_images(tmp_path):
    p = plan({"shard_size": 10, "datasets": {"capped": {"path": str(tmp_path / "nowhere.zip"), "max_images": 25},
                                              "expected": {"path": str(tmp_path / "later.zip"), "expected_images": 31},
                                              "unknown": {"path": str(tmp_path / "gone.zip")}}})
    assert len(p.dataset_shards("capped")) == 3 and p.dataset_shards("expected")[-1] == (30, 31)
    with pytest.raises(ConfigError, match="cannot be counted; place it, or give expected_images"):
        p.dataset_shards("unknown")


def test_the_paper_plan_is_sharded_by_ten_thousand():
    p = load_plan(REPO / "config" / "paper.yaml", home=HOME)
    jobs = {entry["name"]: entry["shards"] for entry in p.shard_jobs()}
    assert p.config["shard_size"] == 10000
    assert jobs == {"ffhq256": 5, "ffhq1024": 7, "metfaces1024": 1, "stylegan2-ffhq256_n49999_z0": 5}


def test_the_shard_table_names_its_measured_bases():
    from fidlens.workflow.shard_plan import format_shard_plan, read_costs, shard_plan_rows

    p = load_plan(REPO / "config" / "paper.yaml", home=HOME)
    costs = read_costs(REPO / "benchmarks" / "records")
    rows = {(row["set"], row["rule"]): row for row in shard_plan_rows(p, costs)}
    shard = rows[("ffhq1024", "feature_shard")]
    assert shard["jobs"] == 7 and shard["images_per_job"] == 10000
    # more images per job → longer; the CPU estimate is slower than the GPU one (both from records)
    small = rows[("metfaces1024", "feature_shard")]
    assert small["gpu_minutes"] < shard["gpu_minutes"] < shard["cpu_minutes"]
    assert rows[("ffhq1024", "merge_feature_shards")]["mem_gb"] > rows[("metfaces1024", "merge_feature_shards")]["mem_gb"]
    text = format_shard_plan(p, costs)
    assert "CPU-measured" in text and "feature_shard" in text and "generated_shard" in text
    assert "unmeasured" in format_shard_plan(p, read_costs(REPO / "no-records-here"))


# --- shards merged equal the unsharded set --------------------------------------------------------


@pytest.mark.parametrize("shard_size,batch_size", [(7, 3), (10, 10), (29, 4)])
def test_sharded_image_features_merge_into_the_unsharded_file(tmp_path, shard_size, batch_size):
    folder = faces(tmp_path)
    detector = TinyDetector()
    settings = ExtractionSettings(batch_size=batch_size, progress=False, cache=str(tmp_path / "cache"))
    whole = compute_features(folder, detector, max_images=29, want_logits=True, settings=settings)
    shards = [compute_features(folder, detector, max_images=29, want_logits=True, settings=settings, shard=(a, b))
              for a, b in Plan._ranges(29, shard_size)]
    moments = [Moments.of(s.features) for s in shards]
    meta, count = image_set_meta(folder, shards[0].meta, max_images=29)
    check_shards(shards, moments, count)
    merged = merge_features(shards, meta)
    merged.save(tmp_path / "merged.npz")
    whole.save(tmp_path / "whole.npz")
    assert np.array_equal(merged.features, whole.features) and np.array_equal(merged.logits, whole.logits)
    assert json.dumps(merged.meta) == json.dumps(whole.meta)  # same keys, order and values
    a, b = np.load(tmp_path / "merged.npz"), np.load(tmp_path / "whole.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    stats, ref = statistics_from_moments(moments, meta, "population"), statistics_from_features(whole, "population")
    assert relative_difference(stats.mu, ref.mu) <= TOL and relative_difference(stats.sigma, ref.sigma) <= TOL
    assert stats.meta == ref.meta
    # each shard is its own cache entry, distinct from the set's
    assert len({s.meta["source_hash"] for s in shards} | {whole.meta["source_hash"]}) == len(shards) + 1


def test_shards_that_miss_images_or_disagree_are_refused(tmp_path):
    folder = faces(tmp_path, subjects=(1, 2))
    settings = ExtractionSettings(batch_size=4, progress=False, cache="")
    shards = [compute_features(folder, TinyDetector(), settings=settings, shard=r) for r in [(0, 8), (8, 16), (16, 20)]]
    moments = [Moments.of(s.features) for s in shards]
    with pytest.raises(StatisticsError, match="expected rows from 8 on"):
        check_shards([shards[0], shards[2]], [moments[0], moments[2]], 20)
    with pytest.raises(StatisticsError, match="cover 20 images but the set has 25"):
        check_shards(shards, moments, 25)
    with pytest.raises(StatisticsError, match="moments of 8 images beside 4"):
        check_shards(shards, [moments[0], moments[1], moments[0]], 20)
    other = compute_features(folder, TinyDetector(), settings=settings, shard=(16, 20))
    other.meta["detector_sha256"] = "3" * 64
    with pytest.raises(StatisticsError, match="shard 2 differs from shard 0 in detector_sha256"):
        check_shards([shards[0], shards[1], other], moments, 20)
    with pytest.raises(Exception, match=r"shard \[16, 24\) lies outside the 20 images"):
        compute_features(folder, TinyDetector(), settings=settings, shard=(16, 24))


# --- generated sets: shards are the unsharded set image for image ---------------------------------


@pytest.fixture()
def random_ppca(tmp_path):
    torch.manual_seed(0)
    G = PPCAGenerator(z_dim=6, img_resolution=12)
    with torch.no_grad():
        G.mapping.scale.copy_(torch.rand(6) + 0.5)
        G.synthesis.basis.copy_(torch.randn_like(G.synthesis.basis) * 0.2)  # images in [-1, 1] → uint8
        G.synthesis.mean.copy_(torch.rand_like(G.synthesis.mean) - 0.5)
    path = tmp_path / "g.pt"
    G.save(path)
    return G.eval(), path


def test_latent_rows_are_the_full_draw_sliced():
    full = np.random.RandomState(7).randn(1000, 33)
    for start, stop in [(0, 10), (10, 11), (333, 999), (999, 1000)]:
        assert np.array_equal(latent_rows(7, 33, start, stop), full[start:stop])


@pytest.mark.parametrize("shard_size,batch_size", [(10, 10), (7, 3), (40, 16)])
def test_generated_shards_concatenate_to_the_unsharded_images(random_ppca, shard_size, batch_size):
    G, _ = random_ppca
    n = 40
    whole = torch.cat(list(generated_batches(G, n, 5, batch_size=batch_size)))
    parts = [torch.cat(list(generated_batches(G, b - a, 5, first=a, batch_size=batch_size)))
             for a, b in Plan._ranges(n, shard_size)]
    assert whole.dtype == torch.uint8 and whole.shape[0] == n
    assert torch.equal(torch.cat(parts), whole)
    # real images, each its own: not saturated, no two alike
    assert 50 < whole.float().mean() < 200 and len({bytes(im.numpy()) for im in whole}) == n


def test_generated_shards_merge_into_the_unsharded_features(random_ppca, tmp_path):
    _, path = random_ppca
    detector, generation = TinyDetector(), GenerationSettings.from_mapping({"num_images": 23, "latent_seed": 3})
    settings = ExtractionSettings(batch_size=5, progress=False, cache=str(tmp_path / "cache"))
    whole = compute_generated_features(path, detector, generation, settings=settings)
    shards = [compute_generated_features(path, detector, generation, settings=settings, shard=r)
              for r in Plan._ranges(23, 10)]
    moments = [Moments.of(s.features) for s in shards]
    meta, count = generated_set_meta(shards[1].meta)
    check_shards(shards, moments, count)
    merged = merge_features(shards, meta)
    assert np.array_equal(merged.features, whole.features) and np.array_equal(merged.logits, whole.logits)
    assert json.dumps(merged.meta) == json.dumps(whole.meta)
    stats, ref = statistics_from_moments(moments, meta), statistics_from_features(whole, "unbiased")
    assert relative_difference(stats.sigma, ref.sigma) <= TOL and stats.meta == ref.meta


# --- the workflow: dry runs ------------------------------------------------------------------------


@pytest.mark.slow
def test_dry_runs_list_the_shard_jobs_and_leave_unsharded_configs_alone(tmp_path):
    config = tmp_path / "sharded.yaml"
    config.write_text(yaml.safe_dump({"run": "sharded", "shard_size": 12, "datasets": {
        "faces": {"path": str(ORL / "s1"), "shard_size": 4}, "more": {"path": str(ORL / "s2"), "max_images": 9},
        "whole": {"path": str(ORL / "s3"), "shard_size": None}}}))
    sharded = run_snakemake("-n", "--configfile", str(config), "--cores", "1", cwd=tmp_path, home=tmp_path / "home")
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    counts = job_counts(sharded)
    assert counts["feature_shard"] == 3 + 1 and counts["merge_feature_shards"] == 2
    assert counts["features"] == counts["statistics"] == 1  # only `whole`
    assert "sharded plan" in sharded.stderr
    paper = run_snakemake("-n", "--configfile", str(REPO / "config" / "paper.yaml"), "--cores", "1",
                          cwd=REPO, home=tmp_path / "home")
    assert paper.returncode == 0, paper.stderr[-3000:]
    counts = job_counts(paper)
    assert counts["feature_shard"] == 5 + 7 + 1 and counts["merge_feature_shards"] == 3
    assert counts["generated_shard"] == 5 and counts["merge_generated_shards"] == 1
    assert "features" not in counts and "generated_features" not in counts
    assert "sharded plan" in paper.stderr and "feature_shard" in paper.stderr


def test_a_built_zips_recipe_survives_the_merge(tmp_path):
    """A ZIP made by `make_zip` carries its recipe into the features' metadata: merged shards keep it too."""
    from fidlens.data.zipbuild import build_stylegan_zip

    zip_path = tmp_path / "set.zip"
    build_stylegan_zip(faces(tmp_path, subjects=(1, 2)), zip_path, resolution=16, progress=False)
    settings = ExtractionSettings(batch_size=4, progress=False, cache="")
    whole = compute_features(zip_path, TinyDetector(), want_logits=True, settings=settings)
    shards = [compute_features(zip_path, TinyDetector(), want_logits=True, settings=settings, shard=r)
              for r in Plan._ranges(20, 8)]
    meta, count = image_set_meta(zip_path, shards[0].meta)
    assert "made_by" in whole.meta["source"] and count == 20
    assert json.dumps(merge_features(shards, meta).meta) == json.dumps(whole.meta)
