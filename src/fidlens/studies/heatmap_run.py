"""One heatmap run, the same for ``fidlens heatmap`` and the workflow's heatmap jobs.

Why one function: the CLI used to repeat the workflow script's steps and drift from it (it wrote
no raw numbers). `render_heatmaps` explains generator seeds or images of a set, draws the
figure(s) and writes, beside each picture, its raw 8×8 map and numbers, so a map made by hand
and one made by Snakemake hold the same content.

Where files go: ``outdir`` names them per image (``seed0007.png`` + ``seed0007.npz`` +
``seed0007.json``, or ``image00003.*`` for images of a set); ``outputs`` gives the paths a
workflow rule declares, for one image (``figure``, ``numbers``, optional ``maps``) or for a grid
(``figure``, ``tiles``, ``maps``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fidlens.core.errors import FidlensError
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.metrics.stats import Statistics

__all__ = ["HeatmapFigure", "HeatmapTarget", "heatmap_targets", "render_heatmap_figures", "render_heatmaps"]

SINGLE_KEYS = ("figure", "numbers")
GRID_KEYS = ("figure", "tiles", "maps")


@dataclass(frozen=True)
class HeatmapTarget:
    """Where one explained image goes: its figure and the stem of its raw files (STEM.npz, STEM.json)."""

    figure: Path
    stem: Path

    @property
    def files(self) -> list[Path]:
        return [self.figure, self.stem.with_name(self.stem.name + ".npz"), self.stem.with_name(self.stem.name + ".json")]


def heatmap_targets(outdir: str | os.PathLike, numbers: Sequence[int], *, seeds: bool) -> list[HeatmapTarget]:
    """OUTDIR/seedNNNN.* for generator seeds, OUTDIR/imageNNNNN.* for indices into an image set."""
    names = [f"seed{n:04d}" if seeds else f"image{n:05d}" for n in numbers]
    return [HeatmapTarget(Path(outdir) / f"{name}.png", Path(outdir) / name) for name in names]


def _single_target(outputs: Mapping[str, str | os.PathLike]) -> HeatmapTarget:
    missing = [key for key in SINGLE_KEYS if key not in outputs]
    if missing:
        raise FidlensError(f"a single heatmap needs the outputs {', '.join(SINGLE_KEYS)}; missing {', '.join(missing)}")
    stem = Path(outputs["numbers"]).with_suffix("")
    target = HeatmapTarget(Path(outputs["figure"]), stem)
    if "maps" in outputs and Path(outputs["maps"]) != target.files[1]:
        raise FidlensError(f"the raw map of {outputs['numbers']} is written to {target.files[1]}, not {outputs['maps']}")
    return target


def _check_request(numbers: Sequence[int], generator: Any, images: Any, outdir: Any, outputs: Any,
                   grid: tuple[int, int] | None) -> None:
    if (generator is None) == (images is None):
        raise FidlensError("give either a generator with seeds, or an image set with indices")
    if (outdir is None) == (outputs is None):
        raise FidlensError("give either an output folder or the output files")
    if not numbers:
        raise FidlensError("no seeds or image indices to explain")
    if grid is not None:
        rows, cols = grid
        if outputs is None or any(key not in outputs for key in GRID_KEYS):
            raise FidlensError(f"a heatmap grid needs the outputs {', '.join(GRID_KEYS)}")
        if rows * cols < len(numbers):
            raise FidlensError(f"a {rows}x{cols} grid has no room for {len(numbers)} images")
    elif outputs is not None and len(numbers) != 1:
        raise FidlensError(f"output files name one heatmap, but {len(numbers)} were asked for; give an output folder")


def render_heatmaps(detector: Any, reference: Statistics, generated: Statistics, *, numbers: Sequence[int],
                    generator: Any = None, images: str | os.PathLike | None = None,
                    outdir: str | os.PathLike | None = None, outputs: Mapping[str, str | os.PathLike] | None = None,
                    grid: tuple[int, int] | None = None, sampling: Sampling = DEFAULT_SAMPLING,
                    weighting: str = "squared", progress: bool = True,
                    log: Callable[[str], None] = print) -> list[Path]:
    """Explain seeds of GENERATOR (or indices into IMAGES), draw them, write the raw numbers; the paths written.

    One figure per image (``outdir``, or ``outputs`` for one image), or one grid (``grid`` =
    (rows, cols) with ``outputs``). GENERATOR is moved to the detector's device.
    """
    figure = HeatmapFigure([int(n) for n in numbers], tuple(grid) if grid is not None else None, outputs, outdir)
    return render_heatmap_figures(detector, reference, generated, [figure], generator=generator, images=images,
                                  sampling=sampling, weighting=weighting, progress=progress, log=log)


@dataclass(frozen=True)
class HeatmapFigure:
    """One figure to draw: its seeds (or image indices), grid shape (None: one figure per image) and files."""

    numbers: Sequence[int]
    grid: tuple[int, int] | None = None
    outputs: Mapping[str, str | os.PathLike] | None = None
    outdir: str | os.PathLike | None = None

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> HeatmapFigure:
        """From the workflow's description (`Plan.heatmap_figures`): seeds, grid, outputs."""
        grid = spec.get("grid")
        return cls([int(n) for n in spec["seeds"]], tuple(grid) if grid else None, dict(spec["outputs"]))


def render_heatmap_figures(detector: Any, reference: Statistics, generated: Statistics,
                           figures: Sequence[HeatmapFigure], *, generator: Any = None,
                           images: str | os.PathLike | None = None, sampling: Sampling = DEFAULT_SAMPLING,
                           weighting: str = "squared", progress: bool = True,
                           log: Callable[[str], None] = print) -> list[Path]:
    """Draw several figures from one set-up: every distinct seed (or image) is explained once.

    The explanations are made one image at a time, so an image's map is the same whichever
    figures are drawn with it.
    """
    from fidlens.studies.heatmap import FidSensitivity, describe_setup, explain_seeds, explain_source_images

    for figure in figures:
        _check_request(list(figure.numbers), generator, images, figure.outdir, figure.outputs, figure.grid)
    wanted = list(dict.fromkeys(int(n) for figure in figures for n in figure.numbers))
    sensitivity = FidSensitivity(detector, reference, generated, weighting=weighting)
    common = {"weighting": weighting, "reference_images": reference.num_images, "generated_images": generated.num_images,
              "detector": detector.weights_name}
    if generator is not None:
        generator = generator.to(sensitivity.device)
        explained = explain_seeds(sensitivity, generator, wanted, sampling=sampling, progress=progress)
        source = generator.label
    else:
        explained = explain_source_images(sensitivity, images, wanted, progress=progress)
        source = str(images)
    by_number = dict(zip(wanted, explained))
    drawing = _Drawing(source, describe_setup(sensitivity, reference, generated), common, generator, images,
                       sampling, log)
    written: list[Path] = []
    for figure in figures:
        written += drawing.draw(figure, [by_number[int(n)] for n in figure.numbers])
    return written


@dataclass(frozen=True)
class _Drawing:
    """What every figure of one run shares: where its images come from and how they were explained."""

    source: str
    subtitle: str
    common: Mapping[str, Any]
    generator: Any
    images: str | os.PathLike | None
    sampling: Sampling
    log: Callable[[str], None]

    def draw(self, figure: HeatmapFigure, explanations: Sequence[Any]) -> list[Path]:
        from fidlens.studies.heatmap_figures import (
            save_heatmap_figure,
            save_heatmap_grid,
            write_grid_raw,
            write_heatmap_raw,
        )

        numbers = [int(n) for n in figure.numbers]
        seeds = self.generator is not None
        labels = [f"seed {n}" if seeds else f"image {n}" for n in numbers]
        written: list[Path] = []
        if figure.grid is not None:
            outputs = figure.outputs
            span = f"{'seeds' if seeds else 'images'} {numbers[0]}–{numbers[-1]}"
            save_heatmap_grid(explanations, labels, *figure.grid, outputs["figure"], title=f"{self.source} · {span}",
                              subtitle=self.subtitle)
            write_grid_raw(explanations, labels, figure.grid[1], outputs["tiles"], outputs["maps"])
            written += [Path(outputs[key]) for key in GRID_KEYS]
            where = [str(outputs["figure"])] * len(numbers)
        else:
            targets = [_single_target(figure.outputs)] if figure.outputs is not None else heatmap_targets(
                figure.outdir, numbers, seeds=seeds)
            for target, explanation, label, n in zip(targets, explanations, labels, numbers):
                setup = ({"seed": n, "generator": self.source, **self.common, "sampling": self.sampling.as_dict()}
                         if seeds else {"image_source": str(self.images), "index": n, **self.common})
                save_heatmap_figure(explanation, target.figure, title=f"{self.source} · {label}", subtitle=self.subtitle)
                raw_label = label if seeds else f"{self.images} {label}"
                written += [target.figure, *write_heatmap_raw(explanation, target.stem, label=raw_label, setup=setup)]
            where = [str(target.figure) for target in targets]
        for place, label, ex in zip(where, labels, explanations):
            self.log(f"{label} ({place}): FID with this image {ex.fid_with_image:.4f} (ΔFID {ex.delta_fid:+.6f})")
        return written
