"""The pair maps' index (`fidlens.studies.pairs.maps_index`): one Markdown row and one CSV row per pair map."""

from __future__ import annotations

import csv
import json

import pytest

from fidlens.core.errors import FidlensError
from fidlens.studies.pairs.maps_index import CSV_COLUMNS, write_maps_index


def _pair(folder, bad, good, with_bad, with_good):
    figure = folder / f"pair_{bad}_{good}.png"
    figure.write_bytes(b"png")
    numbers = {"bad": str(bad), "good": str(good), "fid_with_bad": with_bad, "fid_with_good": with_good,
               "swap_change": with_good - with_bad, "fid_without_image": 40.0, "note": None}
    figure.with_suffix(".json").write_text(json.dumps(numbers))
    return str(figure)


def test_index_lists_every_pair_and_counts_the_preferred_good_images(tmp_path):
    figures = [_pair(tmp_path, 12, "40p3", 41.5, 41.25), _pair(tmp_path, 7, 9, 40.0, 40.5)]
    text = write_maps_index(figures, tmp_path / "maps.md", tmp_path / "maps.csv")
    assert (tmp_path / "maps.md").read_text() == text
    assert "| 12 → 40p3 | 41.5000 | 41.2500 | -0.2500 | pair_12_40p3.png |" in text
    assert "| 7 → 9 | 40.0000 | 40.5000 | +0.5000 | pair_7_9.png |" in text
    assert "FID preferred the good image in 1 of 2 pairs." in text
    with open(tmp_path / "maps.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["bad"], r["good"], float(r["swap_change"])) for r in rows] == [("12", "40p3", -0.25), ("7", "9", 0.5)]
    assert rows[0]["numbers"] == "pair_12_40p3.json" and rows[0]["maps"] == "pair_12_40p3.npz"


def test_index_links_maps_drawn_into_a_folder_below_it(tmp_path):
    (tmp_path / "maps").mkdir()
    figures = [_pair(tmp_path / "maps", 12, "40p3", 41.5, 41.25)]
    text = write_maps_index(figures, tmp_path / "maps.md", tmp_path / "maps.csv")
    assert "| 12 → 40p3 | 41.5000 | 41.2500 | -0.2500 | maps/pair_12_40p3.png |" in text
    with open(tmp_path / "maps.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert (row["figure"], row["numbers"], row["maps"]) == (
        "maps/pair_12_40p3.png", "maps/pair_12_40p3.json", "maps/pair_12_40p3.npz")


def test_pair_named_finds_the_pair_or_names_the_file():
    from fidlens.studies.pairs.map_run import pair_named
    from fidlens.studies.pairs.spec import parse_pairs

    chosen = parse_pairs({"probe_step": 0.5, "pairs": [{"bad": 12, "good": "12~3"}]})
    assert pair_named(chosen, chosen.pairs[0].stem) is chosen.pairs[0]
    with pytest.raises(FidlensError, match=r"pairs\.yaml has no pair named pair_1_2"):
        pair_named(chosen, "pair_1_2", "pairs.yaml")


@pytest.mark.slow  # two Inception forward/backward passes on the CPU
def test_render_pair_map_writes_the_figure_its_numbers_and_both_raw_maps(tmp_path, random_inception):
    import numpy as np
    from conftest import write_images

    from fidlens.generators.ppca import fit_ppca
    from fidlens.metrics.stats import Statistics
    from fidlens.studies.pairs.map_run import pair_named, render_pair_map
    from fidlens.studies.pairs.spec import parse_pairs

    rng = np.random.default_rng(6)
    G = fit_ppca(write_images(tmp_path / "faces", list(rng.integers(0, 256, (6, 20, 20, 3), np.uint8))),
                 z_dim=3, resolution=16)
    basis = rng.normal(size=(30, 2048)) * 0.3

    def stats(n, shift):
        with pytest.warns(UserWarning):  # fewer images than dimensions
            return Statistics.from_features(np.abs(rng.normal(size=(n, 30)) @ basis + shift
                                                   + rng.normal(size=(n, 2048)) * 0.2))

    reference, generated = stats(120, 0.0), stats(60, 0.1)
    chosen = parse_pairs({"probe_step": 0.5, "pairs": [{"bad": 4, "good": "4~2"}]})
    pair = pair_named(chosen, chosen.pairs[0].stem)
    out = {"figure": tmp_path / "pair.png", "numbers": tmp_path / "pair.json", "maps": tmp_path / "pair.npz"}
    result = render_pair_map(random_inception, reference, generated, G, chosen, pair, **out)
    assert out["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(out["numbers"].read_text()) == json.loads(json.dumps(result))
    assert (result["bad"], result["good"], result["weighting"]) == ("4", "4~2", "absolute")
    assert result["swap_change"] == pytest.approx(result["fid_with_good"] - result["fid_with_bad"])
    assert result["fid_with_bad"] != result["fid_with_good"] and result["maps_file"] == "pair.npz"
    raw = np.load(out["maps"])
    assert raw["bad_map"].shape == raw["good_map"].shape == (8, 8)
    assert list(raw["scale"]) == [result["map_scale_min"], result["map_scale_max"]]
