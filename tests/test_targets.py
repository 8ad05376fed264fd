"""The plan (fidlens.workflow.targets): what each config runs and where, asked by plain names.

First the plan's functions on the shipped configs (no Snakemake), then real dry runs: the paper
config plans no demo job and shares no file with the demo, and the README's own-datasets recipe
plans only the user's jobs.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import ORL, REPO
from test_workflow import demo_config, job_counts, planned, run_snakemake, summary

from fidlens.workflow.config import ConfigError, load_config, prepare
from fidlens.workflow.targets import RESAMPLING_SETTINGS, Plan, load_plan

HOME = "/fidlens-home"  # $FIDLENS_HOME for the unit tests: the plan only names paths there, reads nothing
# Rules only the demo's jobs use (the paper fetches other weights, with download_weights).
DEMO_RULES = {"demo_split", "demo_distort", "fid_table_demo", "plot_fid_vs_distortion",
              "fit_demo_generator", "fetch_inception", "demo_features"}
# The README's own-datasets recipe (docs text handed to the README), with two real image folders.
RECIPE = {"run": "mine", "detector": {"name": "inception", "weights": "default"}, "covariance": "unbiased",
          "datasets": {"ffhq256": {"path": str(ORL / "s1")}, "mysamples": {"path": str(ORL / "s2"), "max_images": 5}}}


def plan_of(name: str) -> Plan:
    return load_plan(REPO / "config" / name, home=HOME)


def prepared(config: dict) -> dict:
    prepare(config)
    return config


# --- the plan's functions ----------------------------------------------------------------------


def test_a_config_that_names_nothing_runs_nothing():
    plan = Plan(prepared({}), home=HOME)
    assert plan.run == "main" and plan.results == "results/main" and plan.logs == "logs/main"
    assert plan.all_targets() == [] and plan.demo_targets() == []


def test_the_shipped_template_runs_nothing_until_edited():
    plan = plan_of("config.yaml")
    assert plan.run == "mine" and plan.all_targets() == []


def test_the_readme_recipe_names_only_its_own_statistics():
    plan = Plan(prepared(yaml.safe_load(yaml.safe_dump(RECIPE))), home=HOME)
    assert plan.all_targets() == ["results/mine/stats/ffhq256.npz", "results/mine/stats/mysamples.npz"]
    assert plan.image_set_path("mysamples") == str(ORL / "s2") and plan.max_images("mysamples") == 5
    assert plan.max_images("ffhq256") is None


def test_demo_paths_and_sets():
    plan = plan_of("demo.yaml")
    assert (plan.run, plan.results, plan.logs, plan.benchmarks) == (
        "demo", "results/demo", "logs/demo", "results/demo/benchmarks")
    assert plan.demo_comparison_sets() == ["comparison", "blur1", "blur2", "noise1", "noise2",
                                           "occlusion1", "occlusion2"]
    assert plan.image_set_path("blur2") == "results/demo/data/blur2"
    assert plan.manifest_path("blur2") == "results/demo/manifests/blur2.json"
    assert plan.source_folder("orl") == "data/orl_faces"
    assert plan.source_manifest_path("orl") == "results/demo/manifests/sources/orl.json"
    assert plan.distortion_strength("noise", "2") == 64 and plan.distortion_strength("blur", 1) == 1.0
    with pytest.raises(ValueError, match=r"levels 1\.\.2"):
        plan.distortion_strength("blur", 3)
    assert plan.demo_subjects("reference") == [1, 10] and plan.demo_subjects("comparison") == [21, 30]
    assert plan.fid_table_params() == {"names": plan.demo_comparison_sets(),
                                       "distortions": {"blur": [1.0, 4.0], "noise": [16, 64], "occlusion": [0.1, 0.4]},
                                       "kid": {"num_subsets": 100, "max_subset_size": 50, "seed": 0}}
    assert plan.figure_params() == {"sample": "s21_01"}


def test_demo_generator_heatmaps_and_pairs():
    plan = plan_of("demo.yaml")
    assert plan.generator_network("demo") == "results/demo/generators/demo.pt" and plan.fit_on("demo") == "reference"
    sampling = {"truncation_psi": 1.0, "truncation_cutoff": None, "noise_mode": "const", "class_idx": None}
    assert plan.generation_settings("demo", "99", "0") == {"num_images": 99, "latent_seed": 0, **sampling}
    assert plan.heatmap_targets() == ["results/demo/heatmaps/demo/seed0107.png", "results/demo/heatmaps/demo/seed0540.png",
                                      "results/demo/heatmaps/demo/seed0386.png",
                                      "results/demo/heatmaps/demo/grid_100_2x4.png"]
    assert plan.heatmap_generated_stats("demo") == "results/demo/generated/demo/stats_n99_z0.npz"
    assert plan.heatmap_reference_stats("demo") == "results/demo/stats/reference.npz"
    assert plan.heatmap_params("demo") == {"sampling": sampling, "which": "G_ema", "weighting": "squared",
                                           "device": "auto", "detector": plan.detector_params()}
    # the `heatmaps` job: every figure of the generator, with the files heatmap_seed/heatmap_grid would write
    figures = plan.heatmap_figures("demo")
    assert [(f["seeds"], f["grid"]) for f in figures] == [([107], None), ([540], None), ([386], None),
                                                          (list(range(100, 108)), [2, 4])]
    assert figures[0]["outputs"] == {"figure": "results/demo/heatmaps/demo/seed0107.png",
                                     "maps": "results/demo/heatmaps/demo/seed0107.npz",
                                     "numbers": "results/demo/heatmaps/demo/seed0107.json"}
    assert figures[3]["outputs"] == {"figure": "results/demo/heatmaps/demo/grid_100_2x4.png",
                                     "tiles": "results/demo/heatmaps/demo/grid_100_2x4.csv",
                                     "maps": "results/demo/heatmaps/demo/grid_100_2x4.npz"}
    assert [f["outputs"]["figure"] for f in figures] == plan.heatmap_targets()
    (job,) = plan.heatmap_jobs()
    assert job == {"generator": "demo", "network": plan.generator_network("demo"),
                   "reference": plan.heatmap_reference_stats("demo"), "generated": plan.heatmap_generated_stats("demo"),
                   "figures": figures, "sampling": sampling, "which": "G_ema", "weighting": "squared"}
    assert plan.demo_feature_sets() == ["reference", *plan.demo_comparison_sets()]
    assert plan_of("paper.yaml").demo_feature_sets() == []  # the paper's sets: one `features` job each
    assert plan.pairs_targets() == ["results/demo/tables/pairs_table2.csv", "results/demo/tables/pairs_table2.md",
                                    "results/demo/pairs/demo/maps.md"]
    assert plan.pairs_file_inputs("demo") == {"network": "results/demo/generators/demo.pt"}  # pairs: auto
    assert plan.pairs_study_settings("demo") == {"num_images": 200, "latent_seed": 1, "fraction": 0.05,
                                                 "delete_mode": "shrink", **sampling, "batch_size": 50}
    assert plan.pair_map_files("demo", ["pair_2_2p1"]) == ["results/demo/pairs/demo/maps/pair_2_2p1.png"]
    assert plan.pairs_table_params() == {"models": ["demo"], "published": {"demo": None}}


def test_demo_resampling_job():
    plan = plan_of("demo.yaml")
    job = plan.resampling_job("demo", "top_n_N1")
    pool = ["comparison", "blur1", "noise1", "occlusion1"]
    assert job.inputs == {"reals": ["results/demo/features/reference.npz"],
                          "pool": [f"results/demo/features/{name}.npz" for name in pool],
                          "real_control": ["results/demo/resampling/pixels/reference.npz"],  # the demo's control
                          "pool_control": [f"results/demo/resampling/pixels/{name}.npz" for name in pool]}
    assert job.params["pool_images"] == [f"results/demo/data/{name}" for name in pool]
    assert job.params["pool_labels"] == pool and job.params["generator"] is None
    assert set(job.params["settings"]) == set(RESAMPLING_SETTINGS)
    assert job.params["settings"]["lr"] == 1.0 and job.params["settings"]["chunk_size"] == 8192  # a schema default
    assert job.params["outdir"] == "results/demo/resampling/demo/top_n_N1" and job.params["mode"] == "top_n_N1"
    assert job.params["control"]["name"] == "pixels" and job.params["detector"] == "default_1.pt"
    assert plan.resampling_targets() == ["results/demo/resampling/demo/pre_logits/log.csv",
                                         "results/demo/resampling/demo/top_n_N1/log.csv"]


def test_a_resampling_run_is_worked_out_once(monkeypatch):
    plan = plan_of("demo.yaml")
    calls = Counter()
    original = plan.image_set_path
    monkeypatch.setattr(plan, "image_set_path", lambda name: calls.update([name]) or original(name))
    first = plan.resampling_job("demo", "pre_logits")
    counted = sum(calls.values())
    assert counted == 5  # the reals and four pool sets
    again = [plan.resampling_job("demo", mode) for mode in ("pre_logits", "top_n_N1", "pre_logits")]
    assert sum(calls.values()) == counted
    assert again[0] == first and again[1].params["outdir"].endswith("/top_n_N1")


def test_weights_detector_and_cache_live_in_fidlens_home():
    plan = plan_of("demo.yaml")
    assert plan.weights_path() == f"{HOME}/weights/default_1.pt"
    assert plan.detector_params() == {"name": "inception", "weights": f"{HOME}/weights/default_1.pt"}
    assert plan.detector_label() == "default_1.pt" and plan.feature_cache == f"{HOME}/features"
    own = Plan(prepared({"detector": {"weights": "w/mine.pt"}, "feature_cache": "/scratch/cache"}), home=HOME)
    assert own.weights_path() == "w/mine.pt" and own.feature_cache == "/scratch/cache"
    with pytest.raises(ConfigError, match=r"config detector\.weights: detector 'precomputed' has no default"):
        Plan(prepared({"detector": {"name": "precomputed"}}), home=HOME).weights_path()


def test_fidlens_assets_reports_the_file_the_workflow_and_the_cli_use(tmp_path, monkeypatch):
    from fidlens.assets.registry import asset_by_name, asset_for_target, asset_status
    from fidlens.assets.store import default_inception_path

    monkeypatch.setenv("FIDLENS_HOME", str(tmp_path / "home"))
    plan = load_plan(REPO / "config" / "demo.yaml")  # $FIDLENS_HOME from the environment, as in the workflow
    default = asset_by_name("fid-helper-default")
    assert default.target == plan.weights_path() == default_inception_path().as_posix()
    assert asset_for_target(plan.weights_path()) is default
    assert asset_status(default, root=tmp_path / "elsewhere").state == "missing"
    Path(plan.weights_path()).parent.mkdir(parents=True)
    Path(plan.weights_path()).write_bytes(b"placed")
    assert asset_status(default, root=tmp_path / "elsewhere").state == "present"  # whatever the workflow folder
    paper = load_plan(REPO / "config" / "paper.yaml")
    assert asset_for_target(paper.weights_path()) is asset_by_name("inception-2015-12-05")
    assert asset_for_target(paper.resampling_job("stylegan2-ffhq256", "logits").inputs["control_weights"]) is \
        asset_by_name("clip-vit-b32")


def test_paper_plan_stands_alone():
    plan, demo = plan_of("paper.yaml"), plan_of("demo.yaml")
    assert plan.results == "results/paper" and plan.demo_targets() == [] and "demo" not in plan.generators
    url = plan.config["detector"]["weights"]
    assert plan.weights_path() == f"{HOME}/weights/inception-2015-12-05.pt"
    assert plan.configured_urls() == {"inception-2015-12-05.pt": url}
    job = plan.resampling_job("stylegan2-ffhq256", "logits")
    pool = "results/paper/resampling/pools/stylegan2-ffhq256_n250000_z0"  # generated and featurised once
    assert job.inputs == {"reals": ["results/paper/features/ffhq256.npz"], "pool": [f"{pool}/inception.npz"],
                          "network": "resources/networks/ffhq-fid50k_5.30-snapshot-022608.pkl",
                          "control_weights": f"{HOME}/weights/ViT-B-32.pt",
                          "real_control": ["results/paper/resampling/clip/ffhq256.npz"],
                          "pool_control": [f"{pool}/control.npz"]}
    assert job.params["generator"]["num_images"] == 250000 and job.params["detector"] == "inception-2015-12-05.pt"
    assert len(plan.heatmap_targets()) == 7 and plan.heatmap_targets()[-1].endswith("/grid_100_5x8.png")
    assert len(plan.pairs_targets()) == 2 + 2 + 6 + 1  # Tables 2 and 1, six pair-map indexes, Fig. 4
    targets = plan.all_targets()
    assert targets and all(target.startswith("results/paper/") for target in targets)
    assert not set(targets) & set(demo.all_targets())


def test_deprecated_inception_weights_still_works():
    config = {"inception_weights": "w/old.pt"}
    (note,) = prepare(config)
    assert "inception_weights is deprecated" in note and "\n" not in note
    assert config["detector"] == {"name": "inception", "weights": "w/old.pt"} and "inception_weights" not in config
    with pytest.raises(ConfigError, match="config inception_weights: give either detector"):
        prepare({"inception_weights": "w/old.pt", "detector": {"weights": "default"}})
    assert prepare({"detector": {"weights": "default"}}) == []


def test_defaults_are_filled_at_every_depth_and_never_shared():
    config = prepared({"datasets": {"a": {"path": "x"}},
                       "heatmaps": {"g": {"reference": "a"}, "h": {"reference": "a"}},
                       "pairs": {"m": {"generator": "g", "reference": "a"}}})
    assert config["datasets"]["a"]["max_images"] is None and config["pairs"]["m"]["auto"]["candidates"] == 200
    assert config["detector"] == {"name": "inception", "weights": "default"} and config["kid"]["seed"] == 0
    config["heatmaps"]["g"]["seeds"].append(1)
    assert config["heatmaps"]["h"]["seeds"] == []
    with pytest.raises(ConfigError, match=r"^config run: 'a/b' does not match"):
        prepare({"run": "a/b"})


def test_an_entry_that_points_at_nothing_is_one_line():
    seen = []
    config = prepared({"heatmaps": {"nosuchgen": {"reference": "reference"}}})
    plan = Plan(config, home=HOME, on_problem=seen.append)
    with pytest.raises(ConfigError):
        plan.heatmap_params("nosuchgen")
    assert seen == ["config heatmaps.nosuchgen: 'nosuchgen' is not a known generator (none configured)"]
    with pytest.raises(ConfigError, match=r"^config generators: 'nope' is not a known generator \(demo\)$"):
        plan_of("demo.yaml").generator_network("nope")


def test_load_config_refuses_what_the_workflow_refuses(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("device: tpu\n")
    with pytest.raises(ConfigError, match=r"^config device: 'tpu' does not match"):
        load_config(path)


# --- real dry runs -----------------------------------------------------------------------------


def _outputs(summary_of_run: dict[str, str], jobs: list[dict[str, str]]) -> set[str]:
    """Every output and log a dry run plans (message rules appear in the summary only)."""
    logs = {path for job in jobs for path in job.get("log", "").split(", ") if path}
    return set(summary_of_run) | logs


@pytest.mark.slow
def test_paper_config_plans_no_demo_job_and_writes_nowhere_the_demo_writes(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    runs = {}
    for name, config in (("demo", demo_config(tmp_path)), ("paper", REPO / "config" / "paper.yaml")):
        common = ["--cores", "2", "--configfile", str(config), "--directory", str(work)]
        dry = run_snakemake("-n", *common, home=home)
        listed = run_snakemake("--summary", *common, home=home)
        assert dry.returncode == 0 and listed.returncode == 0, dry.stderr[-3000:] + listed.stderr[-3000:]
        runs[name] = (dry, summary(listed), load_plan(config, home=home))
    (paper_dry, paper_files, paper_plan), (demo_dry, demo_files, demo_plan) = runs["paper"], runs["demo"]
    paper_rules = set(job_counts(paper_dry))
    assert paper_rules >= {"feature_shard", "merge_feature_shards", "resample", "pairs_study", "download_weights"}
    assert "heatmaps" in paper_rules  # one job draws every configured heatmap
    assert not paper_rules & DEMO_RULES, paper_rules & DEMO_RULES
    assert set(paper_files.values()) == paper_rules - {"all"}  # the summary lists every job's files
    assert set(paper_plan.all_targets()) <= set(paper_files) and set(demo_plan.all_targets()) <= set(demo_files)
    paper_out, demo_out = _outputs(paper_files, planned(paper_dry)), _outputs(demo_files, planned(demo_dry))
    assert not paper_out & demo_out, sorted(paper_out & demo_out)
    places = ("results/paper/", "logs/paper/", "resources/", f"{home}/weights/")
    assert all(path.startswith(places) for path in paper_out), sorted(p for p in paper_out if not p.startswith(places))
    assert all(path.startswith(("results/demo/", "logs/demo/", f"{home}/weights/")) for path in demo_out)
    assert not (work / "results").exists()  # dry runs write nothing


@pytest.mark.slow
def test_the_readme_recipe_plans_only_the_users_jobs(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump(RECIPE))
    result = run_snakemake("-n", "--cores", "2", "--configfile", str(config), "--directory", str(tmp_path / "work"),
                           home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result) == Counter({"image_manifest": 2, "features": 2, "statistics": 2, "fetch_inception": 1,
                                          "all": 1})
    plan = load_plan(config, home=tmp_path / "home")
    (all_job,) = [job for job in planned(result) if job["rule"] == "all"]
    assert all_job["input"].split(", ") == plan.all_targets()
    wildcards = {job["wildcards"] for job in planned(result) if job["rule"] != "all"}
    assert wildcards == {"dataset=ffhq256", "dataset=mysamples"}


def test_the_plan_needs_neither_snakemake_nor_torch():
    """Scripts, docs tools and tests build plans in environments without either (envs/data.yaml)."""
    code = ("import sys; from fidlens.workflow.targets import demo_plan; demo_plan().all_targets(); "
            "print(sorted({'torch', 'snakemake'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
