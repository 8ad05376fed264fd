"""The probe page: z's agree with the latent names, the sheet and the HTML say the same thing."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import ORL, SG3_SAMPLES
from PIL import Image

from fidlens.cli.main import main
from fidlens.core.errors import FidlensError
from fidlens.generators.generate import synthesize_uint8, ws_for_latents
from fidlens.generators.ppca import PPCAGenerator, fit_ppca
from fidlens.generators.latents import LatentRef, latent_z, latents_z
from fidlens.studies.pairs.probe import (
    GAP,
    SheetLayout,
    best_probes,
    probe_refs,
    probe_z,
    write_probe_page,
)


@pytest.fixture(scope="module")
def G() -> PPCAGenerator:
    """The demo generator: greyscale (1 channel) 64² faces."""
    return fit_ppca(ORL, z_dim=32, resolution=64)


@pytest.fixture(scope="module")
def page(G, tmp_path_factory):
    """13 probes around seed 123 at native size (tile 64 = no resizing), 5 columns."""
    return write_probe_page(G, 123, tmp_path_factory.mktemp("probe"), count=13, step=0.7, columns=5, tile=64,
                            batch_size=4, progress=False)


def generated(G, refs: list[LatentRef], step: float) -> np.ndarray:
    """uint8 NHWC images for latent names, straight from latents.py."""
    ws = ws_for_latents(G, latents_z(refs, G.z_dim, step))
    return synthesize_uint8(G, ws).permute(0, 2, 3, 1).numpy()


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.rows, self.areas = [], {}, []
        self._row = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "area":
            self.areas.append(attrs)
        elif tag == "tr" and attrs.get("id"):
            self._row = attrs["id"]
            self.rows[self._row] = ""

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row:
            self.rows[self._row] += data + "|"


def parse(path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_probe_z_equals_the_latent_names():
    z = probe_z(123, 30, 0.7, 32)
    assert z.shape == (31, 32)
    assert np.array_equal(z[0], np.random.RandomState(123).randn(1, 32)[0])
    for k in range(31):
        assert np.array_equal(z[k], latent_z(LatentRef(123, k), 32, 0.7)[0])
    assert probe_refs(123, 3) == [LatentRef(123), LatentRef(123, 1), LatentRef(123, 2), LatentRef(123, 3)]
    assert np.array_equal(probe_z(123, 5, 0.7, 32), z[:6])  # a probe is the same whatever the count


def test_sheet_has_one_tile_per_latent_in_the_right_place(G, page):
    sheet = np.asarray(Image.open(page.sheet).convert("RGB"))
    layout = SheetLayout(columns=5, tile=64)
    band = layout.band
    assert sheet.shape[:2] == (GAP + 3 * (64 + band + GAP), GAP + 5 * (64 + GAP))  # 14 tiles in 3 rows of 5
    expected = generated(G, list(page.refs), 0.7)
    for index in range(14):
        left, top, _, _ = layout.cell_box(index)
        assert np.array_equal(sheet[top : top + 64, left : left + 64], np.repeat(expected[index], 3, axis=2))
    left, top, right, bottom = layout.cell_box(14)  # the free cell at the end stays background
    assert (sheet[top:bottom, left:right] == 64).all()


def test_bad_seed_tile_is_labelled_red_and_numbers_are_drawn(page):
    sheet = np.asarray(Image.open(page.sheet).convert("RGB")).astype(int)
    layout = SheetLayout(columns=5, tile=64)

    def band(index):
        left, top, right, bottom = layout.cell_box(index)
        return sheet[top + 64 : bottom, left:right]

    red = band(0)
    assert ((red[..., 0] > 150) & (red[..., 1] < 80)).mean() > 0.5  # mostly red
    assert (red.min(axis=2) > 200).any()  # white text on it
    for index in (1, 13):
        white = band(index)
        assert (white.min(axis=2) > 240).mean() > 0.5 and (white.max(axis=2) < 80).any()  # black on white
    assert not np.array_equal(band(1), band(13))  # different numbers


def test_html_links_the_sheet_and_lists_every_latent_name(page):
    parsed = parse(page.html)
    text = page.html.read_text(encoding="utf-8")
    assert [img["src"] for img in parsed.images] == [page.sheet.name]  # relative link, beside the page
    assert page.sheet.parent == page.html.parent
    assert set(parsed.rows) == {f"p{k}" for k in range(14)}
    assert "123|" in parsed.rows["p0"] and "bad seed" in parsed.rows["p0"]
    for k in range(1, 14):
        assert f"123~{k}|" in parsed.rows[f"p{k}"]
        assert f'- {{bad: 123, good: "123~{k}"}}' in parsed.rows[f"p{k}"]
    assert [a["title"] for a in parsed.areas] == [str(r) for r in page.refs]
    assert "probe_step: 0.7" in text and "pairs:" in text and "PPCA demo generator" in text
    assert "Hint only" in text


def test_face_scores_are_hints_for_the_best_probes(page):
    scores = page.face_scores
    assert scores is not None and scores.shape == (14,)
    hinted = best_probes(scores)
    assert hinted and 0 not in hinted and len(hinted) <= 10
    assert all(np.isfinite(scores[k]) for k in hinted)
    assert list(scores[hinted]) == sorted(scores[hinted], reverse=True)
    others = [k for k in range(1, 14) if k not in hinted]
    assert all(scores[k] <= scores[hinted[-1]] for k in others)
    parsed = parse(page.html)
    marked = [row for row, text in parsed.rows.items() if "★" in text]
    assert sorted(marked) == sorted(f"p{k}" for k in hinted)
    assert best_probes(np.array([9.0, -np.inf, 2.0, 5.0]), top=5) == [3, 2]  # the seed itself never, no-face never


def test_page_is_deterministic_and_written_without_leftovers(G, page, tmp_path):
    again = write_probe_page(G, 123, tmp_path, count=13, step=0.7, columns=5, tile=64, batch_size=5,
                             progress=False)
    assert again.sheet.read_bytes() == page.sheet.read_bytes()
    assert again.html.read_text(encoding="utf-8") == page.html.read_text(encoding="utf-8")
    assert np.array_equal(again.face_scores, page.face_scores)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0123_step0.7.html", "seed0123_step0.7.png"]


def test_without_face_scores_and_with_a_colour_generator(tmp_path):
    G = fit_ppca(SG3_SAMPLES, z_dim=8, resolution=32)  # 3 channels
    assert G.img_channels == 3
    page = write_probe_page(G, 5, tmp_path, count=4, step=0.5, columns=3, tile=48, face_scores=False,
                            progress=False)
    assert page.face_scores is None
    text = page.html.read_text(encoding="utf-8")
    assert "face score" not in text and "★" not in text and "5~4" in text
    sheet = np.asarray(Image.open(page.sheet).convert("RGB")).astype(int)
    left, top, right, _ = SheetLayout(3, 48).cell_box(1)
    tile = sheet[top : top + 48, left:right]
    assert np.abs(tile[..., 0] - tile[..., 2]).max() > 0  # colour survives


@pytest.mark.parametrize("bad", [{"count": 0}, {"step": 0.0}, {"step": float("nan")}, {"tile": 16},
                                 {"columns": 0}, {"seed": -1}, {"seed": 2**32}])
def test_impossible_requests_raise_a_user_error(G, tmp_path, bad):
    kwargs = {"seed": 1, "count": 3, "progress": False} | bad
    with pytest.raises(FidlensError):
        write_probe_page(G, outdir=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_cli_probe_writes_both_files(G, tmp_path, capsys):
    network = tmp_path / "demo.pt"
    G.save(network)
    outdir = tmp_path / "out"
    args = ["probe", "--network", str(network), "--seed", "42", "--count", "6", "--columns", "4", "--step", "0.25",
            "--outdir", str(outdir), "--device", "cpu", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    sheet, html = outdir / "seed0042_step0.25.png", outdir / "seed0042_step0.25.html"
    assert sheet.is_file() and html.is_file()
    assert str(sheet) in out and str(html) in out
    assert Image.open(sheet).size == SheetLayout(4, 128).size(7)
    assert re.search(r"42~6\b", html.read_text(encoding="utf-8"))


def test_cli_probe_reports_user_errors_as_one_line(G, tmp_path, capsys):
    network = tmp_path / "demo.pt"
    G.save(network)
    assert main(["probe", "--network", str(network), "--seed", "1", "--step", "-1", "--outdir", str(tmp_path),
                 "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: the probe step must be a positive number" in err
    assert main(["probe", "--network", str(network), "--seed", "1", "--class", "2", "--outdir", str(tmp_path),
                 "--device", "cpu", "--quiet"]) == 2
    assert "unconditional" in capsys.readouterr().err
