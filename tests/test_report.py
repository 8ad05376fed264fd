"""`snakemake --report`: every caption renders, and a small real run bundles captions and provenance."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import ORL, REPO
from test_workflow import demo_config, run_snakemake

from fidlens.workflow.targets import Plan, load_plan

REPORT = REPO / "report"
# rule -> (rule file, caption) for every output wrapped in report(...)
CAPTIONS = {
    "fid_table_demo": ("tables.smk", "fid_table.rst"),
    "plot_fid_vs_distortion": ("figures.smk", "fid_vs_distortion.rst"),
    "heatmap_seed": ("heatmaps.smk", "heatmap_seed.rst"),
    "heatmap_grid": ("heatmaps.smk", "heatmap_grid.rst"),
    "resample": ("resampling.smk", "resampling_log.rst"),
    "pairs_table": ("pairs.smk", "pairs_table.rst"),
    "pairs_maps": ("pairs.smk", "pair_map.rst"),
}


def shipped_plan(name: str) -> Plan:
    """A shipped config's plan: the config checked and completed as the workflow does it."""
    return load_plan(REPO / "config" / name, home="/fidlens-home")


# the link targets Snakemake appends to every caption
RST_LINKS = """

.. _Workflow: javascript:show_panel('workflow')
.. _Statistics: javascript:show_panel('statistics')
"""


def caption_jobs(plan: Plan):
    """(rule, params, wildcards) for one output of each reported rule: the params the plan gives the rules."""
    yield "fid_table_demo", plan.fid_table_params(), {}
    yield "plot_fid_vs_distortion", plan.figure_params(), {}
    for name, study in plan.heatmaps.items():
        seed = study["seeds"][0]
        params = plan.heatmap_params(name)
        yield "heatmap_seed", {**params, "seeds": [seed], "grid": None}, {"generator": name, "seed": f"{seed:04d}"}
        for first, rows, cols in study["grids"]:
            yield "heatmap_grid", {**params, "grid": (rows, cols)}, {"generator": name, "first": str(first),
                                                                     "rows": str(rows), "cols": str(cols)}
    for run, spec in plan.resampling.items():
        mode = spec["modes"][0]
        yield "resample", plan.resampling_job(run, mode).params, {"run": run, "mode": mode}
    if plan.pairs:
        yield "pairs_table", plan.pairs_table_params(), {}
        for model in plan.pairs:
            yield "pairs_maps", {"detector": plan.detector_params(), "maps": plan.pair_map_params(model)}, {"model": model}


def render_caption(caption: str, rule: str, params: dict, wildcards: dict, config: dict) -> str:
    """Render like Snakemake's report (jinja2, then reStructuredText), but failing on undefined names."""
    from docutils.core import publish_parts
    from jinja2 import Environment, StrictUndefined

    env = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    snakemake = SimpleNamespace(params=SimpleNamespace(**params), wildcards=SimpleNamespace(**wildcards),
                                config=config, rule=rule)
    text = env.from_string((REPORT / caption).read_text()).render(snakemake=snakemake) + RST_LINKS
    body = publish_parts(text, writer="html", settings_overrides={"report_level": 2, "halt_level": 2})["body"]
    return plain(body)


def plain(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


@pytest.mark.parametrize("config_name", ["demo.yaml", "paper.yaml"])
def test_every_caption_renders_for_the_shipped_configs(config_name):
    plan = shipped_plan(config_name)
    config = plan.config
    rendered = {}
    for rule, params, wildcards in caption_jobs(plan):
        text = render_caption(CAPTIONS[rule][1], rule, params, wildcards, config)
        assert "{{" not in text and "{%" not in text and len(text) > 300, (rule, text)
        assert f"rule {rule}" in text
        rendered.setdefault(rule, text)
    assert set(rendered) == set(CAPTIONS)
    weights = config["detector"]["weights"]
    detector = "default_1.pt" if weights == "default" else weights
    assert plan.detector_label() in rendered["resample"]  # the resample caption names the weights file
    for rule in ("fid_table_demo", "heatmap_seed", "heatmap_grid", "pairs_table", "pairs_maps"):
        assert detector in rendered[rule], rule
    assert f"{config['covariance']} covariance" in rendered["fid_table_demo"]
    if config_name == "demo.yaml":
        assert "ORL subjects 1–10 (100 images)" in rendered["fid_table_demo"]
        assert "latent seed 107" in rendered["heatmap_seed"] and "probabilistic-PCA" in rendered["heatmap_seed"]
        assert "latent seeds 100–107" in rendered["heatmap_grid"]
        assert "the sets comparison, blur1, noise1, occlusion1" in rendered["resample"]
    workflow = plain(render_caption("workflow.rst", "all", {}, {}, config))
    assert "provenance.json" in workflow and config["covariance"] in workflow


def test_reported_outputs_point_at_existing_captions():
    for rule, (rule_file, caption) in CAPTIONS.items():
        text = (REPO / "rules" / rule_file).read_text()
        body = text.split(f"rule {rule}:", 1)[1].split("\nrule ", 1)[0].split("\ncheckpoint ", 1)[0]
        assert f'caption="../report/{caption}"' in body, rule
        assert (REPORT / caption).is_file()
    assert 'report: "report/workflow.rst"' in (REPO / "Snakefile").read_text()


def report_results(report: Path) -> tuple[dict, str]:
    """The results table and the workflow description embedded in a Snakemake HTML report."""
    text = report.read_text(encoding="utf-8")
    start = text.index("var results = {") + len("var results = ")
    results, _ = json.JSONDecoder().raw_decode(text, start)
    return results, text


@pytest.mark.slow
def test_report_bundles_captions_and_each_result_has_its_provenance(tmp_path, default_weights):
    """The FID table and figure on 2+2 subjects and two disturbances, then `--report`."""
    shipped = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    demo = {**shipped["demo"], "orl_dir": str(ORL), "reference_subjects": [1, 2], "comparison_subjects": [3, 4],
            "sample_face": "s03_01", "distortions": {"blur": [4.0], "occlusion": [0.4]}}
    kid = {"num_subsets": 10, "max_subset_size": 20, "seed": 0}
    detector = {"name": "inception", "weights": str(default_weights)}
    config = demo_config(tmp_path, detector=detector, demo=demo, kid=kid, threads=1,
                         prdc={"sets": ["comparison", "blur1"]})  # this demo has no noise sets
    workdir = tmp_path / "run"
    workdir.mkdir()
    home = tmp_path / "home"
    plan = load_plan(config, home=home)
    targets = plan.demo_targets()
    assert targets == ["results/demo/tables/fid_demo.csv", "results/demo/figures/fid_vs_distortion.png"]
    common = ["--configfile", str(config), "--directory", str(workdir)]
    result = run_snakemake("--cores", "2", *common, *targets, home=home)
    assert result.returncode == 0, result.stderr[-3000:]

    report = tmp_path / "report.html"
    made = run_snakemake("--report", str(report), *common, *targets, home=home)
    assert made.returncode == 0, made.stderr[-3000:]
    assert report.stat().st_size > 100_000
    results, text = report_results(report)
    assert set(results) == set(targets)
    table, figure = (results[t] for t in targets)
    assert table["mime_type"] == "text/csv" and figure["mime_type"] == "image/png"
    table_caption, figure_caption = plain(table["caption"]), plain(figure["caption"])
    assert table_caption.startswith("FID and KID of the embedded ORL-faces demo")
    assert "ORL subjects 1–2 (20 images)" in table_caption and "subjects 3–4 (20 images" in table_caption
    assert "(blur 4.0; occlusion 0.4:" in table_caption and "10 random subsets of at most 20 images" in table_caption
    assert "unbiased covariance convention" in table_caption and "rule fid_table_demo" in table_caption
    assert figure_caption.startswith("FID against disturbance strength")
    assert "the face s03_01 at every level" in figure_caption and "(blur, occlusion)" in figure_caption
    assert table["labels"] == {"result": "FID and KID table"}
    assert "fidlens measures what Fr" in text  # the global description (report/workflow.rst)

    for target, rule in zip(targets, ("fid_table_demo", "plot_fid_vs_distortion")):
        output = workdir / target
        record = json.loads((workdir / f"{target}.provenance.json").read_text())
        assert record["rule"] == rule
        assert record["output"]["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
        assert record["packages"]["snakemake"] and record["device"]["name"]
        if rule == "fid_table_demo":
            assert record["params"]["distortions"] == {"blur": [4.0], "occlusion": [0.4]}
            assert record["params"]["kid"] == kid
            assert record["params"]["names"] == ["comparison", "blur1", "occlusion1"]
            stats = [i for i in record["inputs"] if i["name"] == "stats"]
            assert [Path(i["path"]).name for i in stats] == ["comparison.npz", "blur1.npz", "occlusion1.npz"]
            for item in record["inputs"]:
                data = (workdir / item["path"]).read_bytes()
                assert item["sha256"] == hashlib.sha256(data).hexdigest()
        else:
            assert record["params"] == {"sample": "s03_01"}
            images = [i for i in record["inputs"] if i["name"] == "images"]
            assert len(images) == 3 and all(i["kind"] == "directory" and i["files"] == 20 for i in images)
