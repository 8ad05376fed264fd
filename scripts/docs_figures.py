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

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

HEATMAP_CODE = ["src/fidlens/studies/heatmap.py", "src/fidlens/studies/heatmap_figures.py"]
RESAMPLING_CODE = ["src/fidlens/studies/resampling/figures.py", "scripts/resample.py"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan(config: dict) -> dict[str, dict]:
    """docs image → the result it is copied from and the source files that draw it."""
    study = config["heatmaps"]["demo"]
    first, rows, cols = study["grids"][0]
    run = "results/resampling/demo/pre_logits"
    return {
        "fid_vs_distortion.png": {"source": "results/figures/fid_vs_distortion.png",
                                  "code": ["src/fidlens/studies/demo.py", "scripts/plot_fid_vs_distortion.py"]},
        "heatmap_grid_demo.png": {"source": f"results/heatmaps/demo/grid_{first}_{rows}x{cols}.png",
                                  "code": [*HEATMAP_CODE, "scripts/heatmaps.py"]},
        "heatmap_real_face.png": {"source": "results/docs/heatmap_real_face.png",
                                  "code": [*HEATMAP_CODE, "scripts/docs_figures.py"]},
        "pair_map_demo.png": {"source": None,  # the first pair of the pairs file, known after the run
                              "code": [*HEATMAP_CODE, "src/fidlens/studies/pairs/maps.py", "scripts/pair_map.py"]},
        "resampling_curves_demo.png": {"source": f"{run}/curves.png", "target": f"{run}/log.csv",
                                       "code": [*RESAMPLING_CODE, "src/fidlens/studies/resampling/run.py"]},
        "resampling_highest_demo.png": {"source": f"{run}/grid_highest.png", "target": f"{run}/log.csv",
                                        "code": RESAMPLING_CODE},
        "resampling_lowest_demo.png": {"source": f"{run}/grid_lowest.png", "target": f"{run}/log.csv",
                                       "code": RESAMPLING_CODE},
    }


def older_than_code(config: dict) -> list[str]:
    """Workflow targets whose picture predates its drawing code.

    Snakemake reruns a job when its script changes, not when a library module it imports does.
    """
    stale = []
    for name, item in plan(config).items():
        if name == "heatmap_real_face.png":
            continue  # drawn by this script every time
        if item["source"] is None and not (REPO / "results/pairs/demo/pairs.yaml").is_file():
            continue
        source = REPO / (item["source"] or first_pair_figure())
        newest_code = max((REPO / path).stat().st_mtime for path in item["code"])
        if source.is_file() and source.stat().st_mtime < newest_code:
            stale.append(item.get("target") or str(source.relative_to(REPO)))
    return sorted(set(stale))


def run_workflow(cores: str, targets: list[str], force: bool = False) -> None:
    command = [sys.executable, "-m", "snakemake", "--cores", cores, "--resources", "gpu=1",
               *(["--force"] if force else []), "--", *targets]
    if subprocess.run(command, cwd=REPO).returncode != 0:
        sys.exit("docs-figures: the workflow run failed (see above); docs/ left as it was")


def workflow_targets(config: dict) -> list[str]:
    study = config["heatmaps"]["demo"]
    first, rows, cols = study["grids"][0]
    return ["results/figures/fid_vs_distortion.png", f"results/heatmaps/demo/grid_{first}_{rows}x{cols}.png",
            "results/pairs/demo/maps.md", "results/resampling/demo/pre_logits/log.csv",
            f"results/generated/demo/stats_n{study['num_generated']}_z{study['latent_seed']}.npz",
            f"results/stats/{study['reference']}.npz", "results/data/comparison"]


def draw_real_face(config: dict, out: Path) -> None:
    """The comparison set's first face explained against the demo generator (absolute weighting)."""
    from fidlens.studies.heatmap import (
        FidSensitivity,
        describe_setup,
        explain_source_images,
        save_heatmap_figure,
    )
    from fidlens.studies.heatmap_figures import write_heatmap_raw
    from fidlens.detectors.inception_weights import load_inception
    from fidlens.metrics.stats import Statistics

    study = config["heatmaps"]["demo"]
    reference = Statistics.load(REPO / f"results/stats/{study['reference']}.npz")
    generated = Statistics.load(REPO / f"results/generated/demo/stats_n{study['num_generated']}_z{study['latent_seed']}.npz")
    detector = load_inception(REPO / "resources/weights/default_1.pt", device="cpu")
    sensitivity = FidSensitivity(detector, reference, generated, weighting="absolute")
    images = REPO / "results/data/comparison"
    (explanation,) = explain_source_images(sensitivity, images, [0], progress=False)
    save_heatmap_figure(explanation, out, title="a real face (results/data/comparison, image 0) vs the demo generator",
                        subtitle=describe_setup(sensitivity, reference, generated))
    write_heatmap_raw(explanation, out.with_suffix(""), label="results/data/comparison image 0",
                      setup={"weighting": "absolute", "reference_images": reference.num_images,
                             "generated_images": generated.num_images})


def first_pair_figure() -> str:
    from fidlens.studies.pairs.spec import load_pairs

    pairs = load_pairs(REPO / "results/pairs/demo/pairs.yaml")
    return f"results/pairs/demo/{pairs.pairs[0].stem}.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--no-run", action="store_true", help="use the results already there")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if not args.no_run:
        run_workflow(str(args.cores), workflow_targets(config))
        stale = older_than_code(config)
        if stale:
            print(f"redrawing (older than their drawing code): {', '.join(stale)}")
            for target in stale:
                if target.endswith("log.csv"):  # a run resumes from its checkpoint: drop it to redraw the grids
                    for checkpoint in (REPO / target).parent.glob("checkpoint.*"):
                        checkpoint.unlink()
            run_workflow(str(args.cores), stale, force=True)
    draw_real_face(config, REPO / "results/docs/heatmap_real_face.png")
    from fidlens.core.rawdata import write_json

    record = {}
    for name, item in plan(config).items():
        source = item["source"] or first_pair_figure()
        target = REPO / "docs" / name
        shutil.copyfile(REPO / source, target)
        record[name] = {"source": source, "sha256": sha256(target),
                        "code": {path: sha256(REPO / path) for path in item["code"]}}
        print(f"docs/{name} <- {source}")
    write_json(REPO / "docs/figures.json", record)
    print("wrote docs/figures.json")


if __name__ == "__main__":
    main()
