"""The embedded demo: the disturbance study of the FID paper on the ORL faces.

Reference = subjects 1–20, comparison = subjects 21–40 (different people, same
camera), and the comparison set under graded blur, noise and occlusion. FID of
each against the reference should start at the clean baseline and rise with strength.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fidlens.data.datasets import open_image_source
from fidlens.data.distortions import UNITS, distort


@dataclass(frozen=True)
class DemoSet:
    """One image set of the demo: the clean comparison faces or one distortion level."""

    name: str
    distortion: str  # "none" for the clean sets
    level: int  # 0 for clean, 1.. for increasing strength
    strength: float


def demo_sets(distortions: dict[str, list[float]]) -> list[DemoSet]:
    """The comparison sets in table order: clean first, then each distortion by strength."""
    sets = [DemoSet("comparison", "none", 0, 0.0)]
    for kind, strengths in distortions.items():
        sets += [DemoSet(f"{kind}{i}", kind, i, float(s)) for i, s in enumerate(strengths, start=1)]
    return sets


class _atomic_dir:
    """Build a directory under a temporary name; rename it into place only when complete."""

    def __init__(self, final: str | os.PathLike):
        self.final = Path(final)

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".partial", dir=self.final.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.final.exists():
                shutil.rmtree(self.final)
            os.replace(self.tmp, self.final)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def export_subjects(orl_dir: str | os.PathLike, first: int, last: int, out_dir: str | os.PathLike) -> int:
    """Copy subjects ``first``…``last`` of the ORL database to ``out_dir`` as lossless PNGs."""
    orl_dir = Path(orl_dir)
    count = 0
    with _atomic_dir(out_dir) as tmp:
        for subject in range(first, last + 1):
            folder = orl_dir / f"s{subject}"
            source = open_image_source(folder)
            for name, i in zip(source.names, range(len(source))):
                grey = source[i][..., 0]  # ORL is greyscale; the reader repeats it to RGB
                Image.fromarray(grey).save(tmp / f"s{subject:02d}_{int(Path(name).stem):02d}.png")
                count += 1
    return count


def _image_seed(seed: int, kind: str, name: str) -> int:
    """Per-image seed independent of order and strength: each level disturbs the same way, more."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{kind}/{name}".encode()).digest()[:8], "little")


def write_distorted_set(src_dir: str | os.PathLike, out_dir: str | os.PathLike, kind: str, strength: float, seed: int) -> int:
    """Write every image of ``src_dir`` with one disturbance applied, same names, as PNG."""
    source = open_image_source(src_dir)
    with _atomic_dir(out_dir) as tmp:
        for i, name in enumerate(source.names):
            image = source[i]
            if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]):
                image = image[..., 0]  # keep greyscale sets greyscale
            rng = np.random.default_rng(_image_seed(seed, kind, name))
            Image.fromarray(distort(image, kind, strength, rng)).save(tmp / Path(name).with_suffix(".png").name)
    return len(source)


TABLE_COLUMNS = [
    "set", "distortion", "level", "strength", "unit", "n_reference", "n_images",
    "fid", "kid_x1000", "kid_std_x1000", "detector", "covariance",
]


def write_table(rows: list[dict], path: str | os.PathLike) -> None:
    from fidlens.core.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in TABLE_COLUMNS})


def read_table(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


FIGURE_COLUMNS = ["panel", "set", "level", "strength", "unit", "fid", "kid_x1000", "kid_std_x1000", "sample_face"]


def figure_rows(rows: list[dict], sample: str | None = None) -> list[dict]:
    """The numbers plotted, panel by panel (the clean row starts every panel, as in the figure)."""
    clean = next(r for r in rows if r["distortion"] == "none")
    kinds = list(dict.fromkeys(r["distortion"] for r in rows if r["distortion"] != "none"))
    out = []
    for kind in kinds:
        for r in [clean] + [r for r in rows if r["distortion"] == kind]:
            out.append({"panel": kind, "set": r["set"], "level": int(r["level"]), "strength": float(r["strength"]),
                        "unit": UNITS.get(kind, "") if r is not clean else "", "fid": float(r["fid"]),
                        "kid_x1000": float(r["kid_x1000"]) if r.get("kid_x1000") not in (None, "") else None,
                        "kid_std_x1000": float(r["kid_std_x1000"]) if r.get("kid_std_x1000") not in (None, "") else None,
                        "sample_face": sample or ""})
    return out


def plot_fid_vs_distortion(table_csv: str | os.PathLike, image_dirs: dict[str, Path], out_png: str | os.PathLike,
                           sample: str | None = None, out_csv: str | os.PathLike | None = None) -> None:
    """FID against disturbance level, one panel per disturbance, with the faces it was measured on.

    Levels are evenly spaced on the x-axis (strengths double from level to level, roughly), so the
    axis is labelled as levels with each level's strength under it. ``out_csv`` gets the plotted numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fidlens.core.atomic import atomic_path

    rows = read_table(table_csv)
    clean = next(r for r in rows if r["distortion"] == "none")
    kinds = list(dict.fromkeys(r["distortion"] for r in rows if r["distortion"] != "none"))
    fig, axes = plt.subplots(2, len(kinds), figsize=(4.2 * len(kinds), 6.4), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})
    ymax = max(float(r["fid"]) for r in rows) * 1.08
    for col, kind in enumerate(kinds):
        levels = [clean] + [r for r in rows if r["distortion"] == kind]
        x = [int(r["level"]) for r in levels]
        ax = axes[0, col]
        ax.plot(x, [float(r["fid"]) for r in levels], "o-", color=f"C{col}", lw=2)
        ax.axhline(float(clean["fid"]), color="0.6", ls="--", lw=1, label="clean comparison set")
        for r in levels:
            ax.annotate(f"{float(r['fid']):.0f}", (int(r["level"]), float(r["fid"])), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=8)
        ax.set_xticks(x, [f"{r['level']}\n{float(r['strength']):g}" if r["distortion"] != "none" else "0\nclean"
                          for r in levels])
        ax.set_xlabel(f"level (evenly spaced, not to scale)\nand its {kind} {UNITS.get(kind, 'strength')}", fontsize=9)
        ax.set_ylim(0, ymax)
        ax.grid(alpha=0.3)
        if col == 0:
            ax.set_ylabel("FID vs reference faces")
            ax.legend(loc="upper left", fontsize=8)
        strip = []
        for r in levels:
            src = open_image_source(image_dirs[r["set"]])
            index = source_index(src, sample)
            strip.append(src[index])
        axes[1, col].imshow(np.concatenate(strip, axis=1))
        axes[1, col].set_axis_off()
    n_ref, n_cmp = clean["n_reference"], clean["n_images"]
    fig.suptitle(
        f"FID rises with disturbance strength — ORL faces, {n_cmp} comparison vs {n_ref} reference images "
        f"({clean['detector']}, {clean['covariance']} covariance)", fontsize=10)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    if out_csv is not None:
        from fidlens.core.rawdata import write_csv

        write_csv(out_csv, figure_rows(rows, sample), FIGURE_COLUMNS)


def source_index(source, name: str | None) -> int:
    """Index of the image called ``name`` (without extension), or 0."""
    if name is None:
        return 0
    stems = [Path(n).stem for n in source.names]
    return stems.index(name) if name in stems else 0


def fid_table_rows(reference: dict, sets: dict[str, dict], order: list[DemoSet], kid: dict) -> list[dict]:
    """One row per comparison set: FID from the statistics files, KID from the features.

    The reference's matrix square root is computed once and reused for every row.
    """
    from fidlens.metrics.frechet import ReferenceStatistics
    from fidlens.metrics.kid import kernel_inception_distance
    from fidlens.metrics.stats import FeatureSet, Statistics

    ref_stats = Statistics.load(reference["stats"])
    ref_features = FeatureSet.load(reference["features"]).pool3
    ref = ReferenceStatistics(ref_stats.mu, ref_stats.sigma)
    rows = []
    for item in order:
        stats = Statistics.load(sets[item.name]["stats"])
        if stats.meta.get("covariance") != ref_stats.meta.get("covariance"):
            raise ValueError(f"{item.name} and the reference use different covariance conventions")
        features = FeatureSet.load(sets[item.name]["features"]).pool3
        kid_mean, kid_std = kernel_inception_distance(ref_features, features, **kid)
        rows.append({
            "set": item.name, "distortion": item.distortion, "level": item.level, "strength": item.strength,
            "unit": UNITS.get(item.distortion, ""), "n_reference": ref_stats.num_images,
            "n_images": stats.num_images, "fid": ref.fid(stats.mu, stats.sigma),
            "kid_x1000": 1000 * kid_mean, "kid_std_x1000": 1000 * kid_std,
            "detector": stats.meta.get("detector", ""), "covariance": stats.meta.get("covariance", ""),
        })
    return rows
