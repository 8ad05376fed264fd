"""The probing tool: numbered samples around a bad seed, so a person can pick its good partner.

For a bad seed s the page shows s itself (tile 0, red label) and probes 1..K, where probe k
is z(s) + step · n_k exactly as `latents.latent_z` computes ``"s~k"``. Beside the contact
sheet PNG a static HTML page maps every number to the latent name to copy into the pairs
YAML and says how. Each probe's face score (`fidlens.studies.pairs.faces`) is shown as a hint only.
"""

from __future__ import annotations

import functools
import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import FidlensError
from fidlens.studies.pairs.faces import NO_FACE_SCORE, FaceDetector
from fidlens.generators.generate import latent_batches
from fidlens.generators.base import GeneratorBase, z_from_seed
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.core.progress import progress_bar
from fidlens.generators.latents import MAX_SEED, LatentRef, probe_offsets

BAD_COLOUR = (200, 30, 30)
GAP = 2  # px between cells on the sheet
HINTED = 10  # how many best face scores the page marks


@dataclass(frozen=True)
class ProbePage:
    """What `write_probe_page` wrote: ``refs[0]`` is the bad seed, ``refs[k]`` its probe k."""

    sheet: Path
    html: Path
    seed: int
    step: float
    refs: tuple[LatentRef, ...]
    face_scores: np.ndarray | None  # aligned with refs; NO_FACE_SCORE (−inf) where no face was found


@dataclass(frozen=True)
class SheetLayout:
    """Cell geometry of a contact sheet: a tile with a label band below it."""

    columns: int
    tile: int

    @property
    def band(self) -> int:
        return max(14, self.tile // 6)

    def cell_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of cell ``index``, label band included."""
        row, col = divmod(index, self.columns)
        left = GAP + col * (self.tile + GAP)
        top = GAP + row * (self.tile + self.band + GAP)
        return left, top, left + self.tile, top + self.tile + self.band

    def size(self, cells: int) -> tuple[int, int]:
        rows = -(-cells // self.columns)
        cols = min(cells, self.columns)
        return GAP + cols * (self.tile + GAP), GAP + rows * (self.tile + self.band + GAP)


def probe_refs(seed: int, count: int) -> list[LatentRef]:
    """[seed, seed~1, …, seed~count]."""
    return [LatentRef(seed, k) for k in range(count + 1)]


def probe_z(seed: int, count: int, step: float, z_dim: int) -> np.ndarray:
    """z's ((count + 1) × z_dim): row 0 is z(seed), row k is z(seed) + step · n_k (as `latent_z`)."""
    base = z_from_seed(seed, z_dim)
    return np.concatenate([base, base + step * probe_offsets(seed, count, z_dim)])


def _check_request(seed: int, count: int, step: float, columns: int, tile: int, batch_size: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise FidlensError(f"seed must be between 0 and 2**32 - 1, not {seed}")
    if count < 1:
        raise FidlensError(f"count must be at least 1, not {count}")
    if not np.isfinite(step) or step <= 0:
        raise FidlensError(f"the probe step must be a positive number, not {step}")
    if columns < 1 or batch_size < 1:
        raise FidlensError("columns and batch size must be at least 1")
    if tile < 32:
        raise FidlensError(f"tiles smaller than 32 px cannot carry a readable number (got {tile})")


def _tile_image(image: np.ndarray, tile: int) -> Image.Image:
    """uint8 CHW (1 or 3 channels) → RGB PIL image fitted into tile × tile."""
    hwc = image.transpose(1, 2, 0)
    picture = Image.fromarray(hwc[..., 0] if hwc.shape[2] == 1 else hwc[..., :3]).convert("RGB")
    scale = tile / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture if picture.size == size else picture.resize(size, Image.Resampling.LANCZOS)


def render_probes(G: GeneratorBase, z: np.ndarray, *, tile: int, batch_size: int = 16,
                  detector: FaceDetector | None = None, progress: bool = True,
                  sampling: Sampling = DEFAULT_SAMPLING,
                  device: torch.device | str = "cpu") -> tuple[list[Image.Image], np.ndarray | None]:
    """Tiles for each z, and face scores at full resolution when a detector is given.

    Images are shrunk batch by batch, so 1024² models fit.
    """
    tiles: list[Image.Image] = []
    scores: list[np.ndarray] = []
    batches = latent_batches(G, z, batch_size=batch_size, sampling=sampling, device=device)
    for images in progress_bar(batches, total=-(-len(z) // batch_size), desc="probes", unit="batch", disable=not progress):
        images = images.cpu()
        if detector is not None:
            scores.append(detector.scores(images, progress=False))
        tiles.extend(_tile_image(image, tile) for image in images.numpy())
    return tiles, (np.concatenate(scores) if detector is not None else None)


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def _draw_label(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], label: str, ink: tuple, size: int) -> None:
    """Centre ``label`` in ``box``, shrinking the font until it fits the width."""
    left, top, right, bottom = box
    while True:
        font = _font(size)
        x0, y0, x1, y1 = draw.textbbox((0, 0), label, font=font)
        if x1 - x0 <= right - left - 4 or size <= 8:
            break
        size -= 1
    draw.text((left + (right - left - (x1 - x0)) / 2 - x0, top + (bottom - top - (y1 - y0)) / 2 - y0),
              label, fill=ink, font=font)


def contact_sheet(tiles: list[Image.Image], labels: list[str], layout: SheetLayout) -> Image.Image:
    """Tiles in rows with their label centred in a band below; the first cell is the bad seed (red)."""
    sheet = Image.new("RGB", layout.size(len(tiles)), (64, 64, 64))
    draw = ImageDraw.Draw(sheet)
    for index, (picture, label) in enumerate(zip(tiles, labels)):
        left, top, right, bottom = layout.cell_box(index)
        offset = ((layout.tile - picture.width) // 2, (layout.tile - picture.height) // 2)
        sheet.paste(picture, (left + offset[0], top + offset[1]))
        band_top = top + layout.tile
        fill, ink = (BAD_COLOUR, (255, 255, 255)) if index == 0 else ((255, 255, 255), (0, 0, 0))
        draw.rectangle((left, band_top, right - 1, bottom - 1), fill=fill)
        _draw_label(draw, (left, band_top, right, bottom), label, ink, layout.band - 4)
    return sheet


def best_probes(face_scores: np.ndarray | None, top: int = HINTED) -> list[int]:
    """Probe numbers (≥ 1) with the highest face scores, best first; probes without a face never."""
    if face_scores is None:
        return []
    probes = face_scores[1:]
    order = np.argsort(-probes, kind="stable")
    return [int(i) + 1 for i in order[:top] if probes[i] > NO_FACE_SCORE]


def _format_score(score: float) -> str:
    return f"{score:.2f}" if score > NO_FACE_SCORE else "no face"


def _settings_line(G: GeneratorBase, step: float, count: int, sampling: Sampling) -> str:
    cls = sampling.class_idx
    cutoff = sampling.truncation_cutoff
    parts = [f"probe step {step:g}", f"{count} probes", f"truncation ψ {sampling.truncation_psi:g}"
             + (f" (first {cutoff} ws)" if cutoff is not None else ""),
             f"noise mode {sampling.noise_mode}", f"class {cls if cls is not None else '—'}",
             f"{G.img_resolution}² px, {G.img_channels} channel{'s' if G.img_channels != 1 else ''}"]
    return " · ".join(parts)


def _howto(seed: int, step: float, count: int) -> str:
    line = f'  - {{bad: {seed}, good: "{seed}~N"}}    # N: the tile you picked'
    return f"""<h2>How to use this page</h2>
<ol>
<li>Tile <b>0</b> (red label) is the bad seed {seed} itself. Tiles 1–{count} are samples around it in z:
probe k is z({seed}) + {step:g} · n<sub>k</sub>.</li>
<li>Pick the probe that looks most like the bad image with its defect gone or clearly improved.
Click a tile to jump to its row below.</li>
<li>Copy its line from the table below into the model's pairs YAML under <code>pairs:</code>, and make
the file's <code>probe_step:</code> equal the step of this page ({step:g}):
<pre>probe_step: {step:g}
pairs:
{html.escape(line, quote=False)}</pre>
Latent names do not carry the step: every probe in one pairs file must come from pages made with the
same step. Generate the study with the truncation ψ, noise mode and class of this page.</li>
</ol>"""


def _image_map(refs: list[LatentRef], layout: SheetLayout) -> str:
    areas = []
    for index, ref in enumerate(refs):
        coords = ",".join(str(v) for v in layout.cell_box(index))
        areas.append(f'<area shape="rect" coords="{coords}" href="#p{index}" alt="{ref}" title="{ref}">')
    return '<map name="probes">\n' + "\n".join(areas) + "\n</map>"


def _table(refs: list[LatentRef], face_scores: np.ndarray | None, hinted: list[int]) -> str:
    head = "<tr><th>#</th><th>latent name</th><th>pairs YAML line</th>"
    head += "<th>face score (hint)</th><th>hint</th></tr>" if face_scores is not None else "</tr>"
    rows = [head]
    for index, ref in enumerate(refs):
        number = "0 (bad seed)" if index == 0 else str(index)
        yaml = "" if index == 0 else html.escape(f'- {{bad: {ref.seed}, good: "{ref}"}}', quote=False)
        cells = f"<td>{number}</td><td><code>{ref}</code></td><td><code>{yaml}</code></td>"
        marked = index in hinted
        if face_scores is not None:
            cells += f"<td>{_format_score(face_scores[index])}</td><td>{'★ top face score' if marked else ''}</td>"
        rows.append(f'<tr id="p{index}"{" class=best" if marked else ""}>{cells}</tr>')
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _hint_note(face_scores: np.ndarray | None, hinted: list[int], detector: FaceDetector | None) -> str:
    if face_scores is None or detector is None:
        return ""
    best = ", ".join(str(k) for k in hinted) or "none (no face found in any probe)"
    return (f"<p class=hint><b>Hint only:</b> the face score is the confidence of an automatic frontal-face "
            f"detector ({html.escape(detector.describe())}); “no face” means it found none. It does not judge "
            f"likeness to the bad image or image quality — your eyes decide. Highest face scores "
            f"(marked ★): {best}.</p>")


_STYLE = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:2px 8px}tr.best{background:#fff3c4}"
          "pre,code{background:#f3f3f3}.hint{max-width:60em;color:#444}"
          ".sheet{overflow:auto}.sheet img{max-width:none}")


def probe_html(G: GeneratorBase, refs: list[LatentRef], step: float, sheet_name: str, layout: SheetLayout, *,
               face_scores: np.ndarray | None = None, detector: FaceDetector | None = None,
               sampling: Sampling = DEFAULT_SAMPLING) -> str:
    """The static page: settings, how-to, the sheet with clickable tiles, and the number → name table."""
    seed, count = refs[0].seed, len(refs) - 1
    hinted = best_probes(face_scores)
    title = f"Probes around seed {seed}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>
<body>
<h1>{title}</h1>
<p>Generator: {html.escape(G.label or G.kind)}<br>{html.escape(_settings_line(G, step, count, sampling))}</p>
{_howto(seed, step, count)}
<div class=sheet><img src="{html.escape(sheet_name)}" usemap="#probes" alt="contact sheet of seed {seed} and its probes"
 width="{layout.size(len(refs))[0]}" height="{layout.size(len(refs))[1]}"></div>
{_image_map(refs, layout)}
<h2>Numbers and latent names</h2>
{_hint_note(face_scores, hinted, detector)}
{_table(refs, face_scores, hinted)}
</body>
</html>
"""


def probe_file_stem(seed: int, step: float) -> str:
    """``seed0123_step0.5``: pages of different steps never overwrite each other."""
    return f"seed{seed:04d}_step{step:g}"


def write_probe_page(G: GeneratorBase, seed: int, outdir: str | os.PathLike, *, count: int = 200, step: float = 0.5,
                     columns: int = 20, tile: int = 128, sampling: Sampling = DEFAULT_SAMPLING,
                     device: torch.device | str = "cpu", batch_size: int = 16, face_scores: bool = True,
                     progress: bool = True) -> ProbePage:
    """Write ``OUTDIR/seed0123_step0.5.png`` (contact sheet) and ``.html`` (the page); G must be on ``device``."""
    _check_request(seed, count, step, columns, tile, batch_size)
    refs = probe_refs(seed, count)
    z = probe_z(seed, count, step, G.z_dim)
    detector = FaceDetector() if face_scores else None
    tiles, scores = render_probes(G, z, tile=tile, batch_size=batch_size, detector=detector, progress=progress,
                                  device=device, sampling=sampling)
    layout = SheetLayout(columns, tile)
    labels = [f"bad {seed}" if k == 0 else str(k) for k in range(count + 1)]
    stem = probe_file_stem(seed, step)
    sheet_path, html_path = Path(outdir) / f"{stem}.png", Path(outdir) / f"{stem}.html"
    with atomic_path(sheet_path) as tmp:
        contact_sheet(tiles, labels, layout).save(tmp, format="PNG")
    page = probe_html(G, refs, step, sheet_path.name, layout, face_scores=scores, detector=detector,
                      sampling=sampling)
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return ProbePage(sheet_path, html_path, seed, step, tuple(refs), scores)
