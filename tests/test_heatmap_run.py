"""`fidlens heatmap` and the workflow's heatmap script share one entry point and write the same raw numbers.

Runs with the small random-weight Inception of conftest (the real weights are not needed to
check where numbers go): the CLI must write ``.npz`` + ``.json`` beside every PNG, holding the
numbers of the explanation the figure was drawn from, and a seed explained by the CLI and by
``scripts/heatmaps.py`` must give the same files.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import REPO, write_images

from fidlens.cli.main import main as cli
from fidlens.core.errors import FidlensError
from fidlens.metrics.frechet import frechet_distance
from fidlens.metrics.stats import Statistics


def strict_load(path):
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def stats_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stats")
    rng = np.random.default_rng(3)
    basis = rng.normal(size=(30, 2048)) * 0.3

    def make(n, shift, name):
        features = np.abs(rng.normal(size=(n, 30)) @ basis + shift + rng.normal(size=(n, 2048)) * 0.2)
        with pytest.warns(UserWarning):  # fewer images than dimensions
            Statistics.from_features(features).save(tmp / name)
        return tmp / name

    return make(150, 0.0, "ref.npz"), make(80, 0.1, "gen.npz")


@pytest.fixture()
def random_detector(monkeypatch, random_inception):
    """Every detector load (CLI and script) gives the random network; no weights are fetched."""
    import fidlens.cli.first_use
    import fidlens.extraction.pipeline

    monkeypatch.setattr(fidlens.cli.first_use, "ensure_default_weights", lambda spec, **kw: None)
    monkeypatch.setattr(fidlens.extraction.pipeline, "load_detector", lambda spec, device=None: random_inception)
    return random_inception


@pytest.fixture()
def drawn(monkeypatch):
    """The explanations handed to the figure writer, in order."""
    import fidlens.studies.heatmap_figures as figures

    seen = []
    original = figures.save_heatmap_figure

    def spy(explanation, path, **kwargs):
        seen.append((path, explanation))
        return original(explanation, path, **kwargs)

    monkeypatch.setattr(figures, "save_heatmap_figure", spy)
    return seen


@pytest.fixture(scope="module")
def demo_generator(tmp_path_factory):
    from fidlens.generators.ppca import fit_ppca

    tmp = tmp_path_factory.mktemp("gen")
    images = np.random.default_rng(8).integers(0, 256, size=(6, 20, 20, 3), dtype=np.uint8)
    fit_ppca(write_images(tmp / "faces", list(images)), z_dim=3, resolution=16).save(tmp / "g.pt")
    return tmp / "g.pt"


@pytest.mark.slow  # two Inception forward/backward passes on the CPU
def test_cli_heatmap_writes_raw_numbers_beside_each_picture(tmp_path, stats_files, random_detector, drawn, capsys):
    reference, generated = stats_files
    images = write_images(tmp_path / "imgs", list(np.random.default_rng(4).integers(0, 256, (3, 40, 36, 3), np.uint8)))
    out = tmp_path / "maps"
    code = cli(["heatmap", "--reference", str(reference), "--generated", str(generated), "--images", str(images),
                "--indices", "0,2", "--outdir", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "image00000.json", "image00000.npz", "image00000.png", "image00002.json", "image00002.npz", "image00002.png"]
    assert [path.name for path, _ in drawn] == ["image00000.png", "image00002.png"]
    ref, gen = Statistics.load(reference), Statistics.load(generated)
    without = frechet_distance(ref.mu, ref.sigma, gen.mu, gen.sigma)
    for index, (path, ex) in zip((0, 2), drawn):
        numbers = strict_load(path.with_suffix(".json"))
        assert numbers["fid_with_image"] == ex.fid_with_image and numbers["delta_fid"] == ex.delta_fid
        assert numbers["fid_without_image"] == ex.fid_without_image == pytest.approx(without, rel=1e-10)
        assert numbers["gradient_norm"] == ex.gradient_norm and numbers["map_max"] == float(np.max(ex.cam))
        assert [t["class"] for t in numbers["top_classes"]] == [i for i, _ in ex.top_classes]
        assert numbers["index"] == index and numbers["image_source"] == str(images)
        assert numbers["label"] == f"{images} image {index}" and numbers["map_file"] == f"image{index:05d}.npz"
        assert numbers["weighting"] == "squared" and numbers["generated_images"] == gen.num_images
        raw = np.load(path.with_suffix(".npz"))
        np.testing.assert_array_equal(raw["map"], ex.cam)
        np.testing.assert_array_equal(raw["feature_gradient"], ex.feature_gradient)
    assert drawn[0][1].fid_with_image != drawn[1][1].fid_with_image  # two different images were explained
    assert "wrote 6 files" in capsys.readouterr().out


def _workflow_script():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import heatmaps
    finally:
        sys.path.pop(0)
    return heatmaps


@pytest.mark.slow  # two Inception forward/backward passes on the CPU
def test_cli_and_workflow_write_the_same_seed_files(tmp_path, stats_files, demo_generator, random_detector,
                                                    monkeypatch):
    from fidlens.detectors.base import DetectorSpec
    from fidlens.generators.sampling import SAMPLING_KEYS

    reference, generated = stats_files
    script = _workflow_script()
    monkeypatch.setattr(script, "load_detector", lambda spec, device=None: random_detector)
    flow = tmp_path / "workflow"
    outputs = {"figure": str(flow / "seed0005.png"), "maps": str(flow / "seed0005.npz"),
               "numbers": str(flow / "seed0005.json")}
    sampling = dict(zip(SAMPLING_KEYS, (1.0, None, "const", None)))  # what the rule's params hold
    job = {"network": str(demo_generator), "reference": str(reference), "generated": str(generated),
           "figures": [{"seeds": [5], "grid": None, "outputs": outputs}], "sampling": sampling, "which": "G_ema",
           "weighting": "squared"}
    script.main(DetectorSpec("inception", "default"), "cpu", [job])
    out = tmp_path / "cli"
    assert cli(["heatmap", "--reference", str(reference), "--generated", str(generated), "--network",
                str(demo_generator), "--seeds", "5", "--outdir", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0005.json", "seed0005.npz", "seed0005.png"]
    numbers = strict_load(out / "seed0005.json")
    assert numbers == strict_load(flow / "seed0005.json")
    assert numbers["seed"] == 5 and numbers["label"] == "seed 5" and numbers["sampling"] == sampling
    assert numbers["generator"].startswith("PPCA demo generator")
    cli_raw, flow_raw = np.load(out / "seed0005.npz"), np.load(flow / "seed0005.npz")
    assert sorted(cli_raw.files) == sorted(flow_raw.files) == ["feature_gradient", "map"]
    for key in cli_raw.files:
        np.testing.assert_array_equal(cli_raw[key], flow_raw[key])


@pytest.mark.slow  # three Inception forward/backward passes on the CPU
def test_one_job_draws_a_seed_alone_and_in_a_grid_from_one_explanation(tmp_path, stats_files, demo_generator,
                                                                       random_detector, monkeypatch):
    """The workflow's per-generator job explains seed 5 once for both figures; the files equal separate runs."""
    import fidlens.studies.heatmap as heatmap
    from fidlens.generators.load import load_generator
    from fidlens.metrics.stats import Statistics
    from fidlens.studies.heatmap_run import HeatmapFigure, render_heatmap_figures, render_heatmaps

    reference, generated = (Statistics.load(path) for path in stats_files)
    G = load_generator(str(demo_generator))
    explained = []
    original = heatmap.FidSensitivity.explain
    monkeypatch.setattr(heatmap.FidSensitivity, "explain",
                        lambda self, image: explained.append(1) or original(self, image))
    together, apart = tmp_path / "together", tmp_path / "apart"

    def files(folder):
        return ({"figure": str(folder / "seed0005.png"), "maps": str(folder / "seed0005.npz"),
                 "numbers": str(folder / "seed0005.json")},
                {"figure": str(folder / "grid.png"), "tiles": str(folder / "grid.csv"), "maps": str(folder / "grid.npz")})

    single, grid = files(together)
    render_heatmap_figures(random_detector, reference, generated,
                           [HeatmapFigure([5], None, single), HeatmapFigure([5, 6], (1, 2), grid)], generator=G)
    assert len(explained) == 2  # seeds 5 and 6, each once
    single_apart, grid_apart = files(apart)
    render_heatmaps(random_detector, reference, generated, numbers=[5], generator=G, outputs=single_apart)
    render_heatmaps(random_detector, reference, generated, numbers=[5, 6], generator=G, outputs=grid_apart, grid=(1, 2))
    assert strict_load(together / "seed0005.json") == strict_load(apart / "seed0005.json")
    assert (together / "grid.csv").read_text() == (apart / "grid.csv").read_text()
    for name in ("seed0005.npz", "grid.npz"):
        a, b = np.load(together / name), np.load(apart / name)
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


def test_requests_that_cannot_be_written_are_refused_before_any_work(stats_files):
    from fidlens.studies.heatmap_run import render_heatmaps

    ref, gen = (Statistics.load(p) for p in stats_files)
    cases = [
        ({"images": "x", "generator": object(), "outdir": "o"}, "either a generator"),
        ({"images": "x"}, "either an output folder"),
        ({"images": "x", "outdir": "o", "outputs": {}}, "either an output folder"),
        ({"images": "x", "outputs": {"figure": "a.png"}, "grid": (1, 2)}, "grid needs the outputs"),
        ({"images": "x", "outputs": {"figure": "a.png", "tiles": "a.csv", "maps": "a.npz"}, "grid": (1, 1)},
         "no room for 2"),
        ({"images": "x", "outputs": {"figure": "a.png", "numbers": "a.json"}}, "name one heatmap"),
    ]
    for kwargs, message in cases:
        with pytest.raises(FidlensError, match=message):
            render_heatmaps(None, ref, gen, numbers=[0, 1], **kwargs)


def test_outputs_of_one_heatmap_must_agree_on_the_stem():
    from fidlens.studies.heatmap_run import _single_target, heatmap_targets

    target = _single_target({"figure": "r/seed7.png", "numbers": "r/seed7.json", "maps": "r/seed7.npz"})
    assert [p.name for p in target.files] == ["seed7.png", "seed7.npz", "seed7.json"]
    with pytest.raises(FidlensError, match=r"not r/other\.npz"):
        _single_target({"figure": "r/seed7.png", "numbers": "r/seed7.json", "maps": "r/other.npz"})
    assert [t.figure.name for t in heatmap_targets("o", [7, 12], seeds=True)] == ["seed0007.png", "seed0012.png"]
    assert [t.stem.name for t in heatmap_targets("o", [3], seeds=False)] == ["image00003"]
