"""Regenerate the README's images (docs/*.png) from a demo run: `make docs-figures`.

Runs only the workflow targets the images need (not the whole demo), draws the one image the
workflow does not make (a real comparison face explained against the demo generator), copies
each result into docs/, and records in docs/figures.json, per image, where it came from, its
sha256 and the sha256 of every source file that draws it. tests/test_docs_figures.py recomputes
those: changing the drawing code without rerunning this script fails the test.

    python scripts/docs_figures.py [--cores N] [--no-run]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fidlens.workflow.targets import Plan, demo_plan  # noqa: E402  (after the path line above)

HEATMAP_CODE = ["src/fidlens/studies/heatmap.py", "src/fidlens/studies/heatmap_figures.py"]
RESAMPLING_CODE = ["src/fidlens/studies/resampling/figures.py", "scripts/resample.py"]
ATTRIBUTION_CODE = ["src/fidlens/studies/attribution_grid.py", "src/fidlens/studies/attribution_run.py"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def real_face_figure(demo: Plan) -> str:
    return f"{demo.results}/docs/heatmap_real_face.png"


def ci_prdc_figure(demo: Plan) -> str:
    return f"{demo.results}/docs/fid_ci_prdc.png"


def attribution_figure(demo: Plan) -> str:
    return f"{demo.results}/docs/attribution/grid.png"


def draw_attribution(demo: Plan, out: Path) -> None:
    """The demo generator's set attributed as the demo does, with each tile's heatmap (the demo skips them: time)."""
    from fidlens.studies.attribution_run import GeneratedSet, run_set_attribution

    label = "demo_n99_z0"
    inputs, params = demo.attribution_inputs(label), demo.attribution_params(label)
    gen = params["generated"]
    outputs = {"ranking": out.with_name("ranking.csv"), "summary": out.with_name("attribution.json"), "grid": out}
    run_set_attribution(REPO / inputs["features"], REPO / inputs["reference"], outputs, set_label=label,
                        top=params["top"], covariance=params["covariance"], device="cpu", heatmaps=True,
                        generated=GeneratedSet(REPO / gen["network"], gen["num_images"], gen["latent_seed"],
                                               gen["sampling"], gen["which"]),
                        detector_spec={"name": demo.detector_name(), "weights": str(REPO / demo.weights_path())},
                        weighting=params["weighting"])


def draw_ci_prdc(demo: Plan, out: Path) -> None:
    """The demo's fid_ci.csv and prdc.csv as one picture (error bars; PRDC bars)."""
    from fidlens.studies.metric_figures import draw_ci_and_prdc

    out.parent.mkdir(parents=True, exist_ok=True)
    draw_ci_and_prdc(REPO / demo.fid_ci_table(), REPO / demo.prdc_table()).savefig(out, dpi=110)


def plan(demo: Plan) -> dict[str, dict]:
    """docs image → the result it is copied from and the source files that draw it."""
    run = demo.resampling_folder("demo", "pre_logits")
    return {
        "fid_vs_distortion.png": {"source": demo.demo_figure(),
                                  "code": ["src/fidlens/studies/demo.py", "scripts/plot_fid_vs_distortion.py"]},
        "heatmap_grid_demo.png": {"source": demo.heatmap_grid_path("demo", *demo.heatmap("demo")["grids"][0]),
                                  "code": [*HEATMAP_CODE, "src/fidlens/studies/heatmap_run.py", "scripts/heatmaps.py"]},
        "heatmap_real_face.png": {"source": real_face_figure(demo),
                                  "code": [*HEATMAP_CODE, "scripts/docs_figures.py"]},
        "pair_map_demo.png": {"source": None,  # the first pair of the pairs file, known after the run
                              "code": [*HEATMAP_CODE, "src/fidlens/studies/pairs/maps.py", "src/fidlens/studies/pairs/map_run.py",
                                       "scripts/pair_map.py"]},
        "resampling_curves_demo.png": {"source": f"{run}/curves.png", "target": f"{run}/log.csv",
                                       "code": [*RESAMPLING_CODE, "src/fidlens/studies/resampling/run.py"]},
        "resampling_highest_demo.png": {"source": f"{run}/grid_highest.png", "target": f"{run}/log.csv",
                                        "code": RESAMPLING_CODE},
        "resampling_lowest_demo.png": {"source": f"{run}/grid_lowest.png", "target": f"{run}/log.csv",
                                       "code": RESAMPLING_CODE},
        "attribution_grid_demo.png": {"source": attribution_figure(demo),
                                      "code": [*ATTRIBUTION_CODE, *HEATMAP_CODE, "scripts/docs_figures.py"]},
        "fid_vs_inverse_n_demo.png": {"source": demo.fid_infinity_outputs()["figure"],
                                      "code": ["src/fidlens/metrics/fid_infinity.py",
                                               "src/fidlens/studies/fid_infinity_run.py", "scripts/fid_vs_inverse_n.py"]},
        "fid_ci_prdc_demo.png": {"source": ci_prdc_figure(demo),
                                 "code": ["src/fidlens/studies/metric_figures.py", "src/fidlens/studies/metric_tables.py",
                                          "scripts/docs_figures.py"]},
    }


def older_than_code(demo: Plan) -> list[str]:
    """Workflow targets whose picture predates its drawing code.

    Snakemake reruns a job when its script changes, not when a library module it imports does.
    """
    stale = []
    for name, item in plan(demo).items():
        if name in ("heatmap_real_face.png", "fid_ci_prdc_demo.png", "attribution_grid_demo.png"):
            continue  # drawn by this script every time
        if item["source"] is None and not (REPO / demo.pairs_folder("demo") / "pairs.yaml").is_file():
            continue
        source = REPO / (item["source"] or first_pair_figure(demo))
        newest_code = max((REPO / path).stat().st_mtime for path in item["code"])
        if source.is_file() and source.stat().st_mtime < newest_code:
            stale.append(item.get("target") or str(source.relative_to(REPO)))
    return sorted(set(stale))


def run_workflow(cores: str, targets: list[str], force: bool = False) -> None:
    command = [sys.executable, "-m", "snakemake", "--cores", cores, "--resources", "gpu=1",
               *(["--force"] if force else []), "--", *targets]
    if subprocess.run(command, cwd=REPO).returncode != 0:
        sys.exit("docs-figures: the workflow run failed (see above); docs/ left as it was")


def workflow_targets(demo: Plan) -> list[str]:
    return [demo.demo_figure(), demo.heatmap_grid_path("demo", *demo.heatmap("demo")["grids"][0]),
            f"{demo.pairs_folder('demo')}/maps.md", f"{demo.resampling_folder('demo', 'pre_logits')}/log.csv",
            demo.heatmap_generated_stats("demo"), demo.heatmap_reference_stats("demo"),
            demo.image_set_path("comparison"), *demo.beyond_targets()]


def draw_real_face(demo: Plan, out: Path) -> None:
    """The comparison set's first face explained against the demo generator (absolute weighting)."""
    from fidlens.detectors.inception_weights import load_inception
    from fidlens.metrics.stats import Statistics
    from fidlens.studies.heatmap import (
        FidSensitivity,
        describe_setup,
        explain_source_images,
    )
    from fidlens.studies.heatmap_figures import save_heatmap_figure, write_heatmap_raw

    reference = Statistics.load(REPO / demo.heatmap_reference_stats("demo"))
    generated = Statistics.load(REPO / demo.heatmap_generated_stats("demo"))
    detector = load_inception(REPO / demo.weights_path(), device="cpu")  # $FIDLENS_HOME/weights, as the workflow
    sensitivity = FidSensitivity(detector, reference, generated, weighting="absolute")
    comparison = demo.image_set_path("comparison")
    (explanation,) = explain_source_images(sensitivity, REPO / comparison, [0], progress=False)
    save_heatmap_figure(explanation, out, title=f"a real face ({comparison}, image 0) vs the demo generator",
                        subtitle=describe_setup(sensitivity, reference, generated))
    write_heatmap_raw(explanation, out.with_suffix(""), label=f"{comparison} image 0",
                      setup={"weighting": "absolute", "reference_images": reference.num_images,
                             "generated_images": generated.num_images})


def first_pair_figure(demo: Plan) -> str:
    from fidlens.studies.pairs.spec import load_pairs

    pairs = load_pairs(REPO / demo.pairs_folder("demo") / "pairs.yaml")
    return demo.pair_map_files("demo", [pairs.pairs[0].stem])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--no-run", action="store_true", help="use the results already there")
    args = parser.parse_args()
    demo = demo_plan()  # what `snakemake` without --configfile runs: config/demo.yaml
    if not args.no_run:
        run_workflow(str(args.cores), workflow_targets(demo))
        stale = older_than_code(demo)
        if stale:
            print(f"redrawing (older than their drawing code): {', '.join(stale)}")
            for target in stale:
                if target.endswith("log.csv"):  # a run resumes from its checkpoint: drop it to redraw the grids
                    for checkpoint in (REPO / target).parent.glob("checkpoint.*"):
                        checkpoint.unlink()
            run_workflow(str(args.cores), stale, force=True)
    draw_real_face(demo, REPO / real_face_figure(demo))
    draw_ci_prdc(demo, REPO / ci_prdc_figure(demo))
    draw_attribution(demo, REPO / attribution_figure(demo))
    from fidlens.core.rawdata import write_json

    record = {}
    for name, item in plan(demo).items():
        source = item["source"] or first_pair_figure(demo)
        target = REPO / "docs" / name
        shutil.copyfile(REPO / source, target)
        record[name] = {"source": source, "sha256": sha256(target),
                        "code": {path: sha256(REPO / path) for path in item["code"]}}
        print(f"docs/{name} <- {source}")
    write_json(REPO / "docs/figures.json", record)
    print("wrote docs/figures.json")


if __name__ == "__main__":
    main()
