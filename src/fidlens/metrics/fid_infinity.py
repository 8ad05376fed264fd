"""FID∞ and KID∞ (Chong & Forsyth 2020): FID at several N, extrapolated linearly in 1/N to N = ∞.

FID's bias at N generated images is close to proportional to 1/N, so
FID_N ≈ FID∞ + k/N. FID_N is computed on a seeded random subset of N generated images
(drawn without replacement; the reference stays full) for each N of a grid, a
least-squares line is fitted against 1/N, and its intercept is FID∞. The same is done
for KID, as the full-set unbiased MMD² (cubic kernel) between the subset and the whole
reference: KID is unbiased, so its line should be flat and KID∞ mostly checks that.

The grid is Chong & Forsyth's 15 values in linspace(5000, 50000); a smaller set gets 15
values in linspace(N/10, N) with a floor of `MIN_GRID_SIZE` images, and a note saying so.
Each subset's FID is an exact weighted FID of the whole set (`fidlens.metrics.bootstrap.FrechetResampler`,
counts 0/1): the reference's factor is computed once. See docs/METHODS_metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fidlens.core.errors import StatisticsError
from fidlens.metrics.bootstrap import (
    FrechetResampler,
    Reference,
    _features64,
    _same_dim,
    unbiased_mmd2_from_sums,
)
from fidlens.metrics.kernel_sums import kernel_diagonal, weighted_kernel_sums

__all__ = [
    "DEFAULT_POINTS",
    "PAPER_GRID",
    "Extrapolation",
    "LineFit",
    "check_sizes",
    "draw_inverse_n",
    "draw_panel",
    "fid_infinity",
    "fit_inverse_n",
    "size_grid",
    "subset_indices",
]

PAPER_GRID = (5000, 50000)  # Chong & Forsyth's linspace(5000, 50000, 15)
DEFAULT_POINTS = 15
MIN_GRID_SIZE = 50  # the smallest subset of an automatically scaled grid
MIN_POINTS = 3  # a line through 2 points has no residuals to judge it by


@dataclass(frozen=True)
class LineFit:
    """values ≈ intercept + slope / N by least squares; the intercept is the value at N = ∞."""

    metric: str
    sizes: np.ndarray
    values: np.ndarray
    intercept: float
    slope: float
    r_squared: float  # NaN when every value is the same
    residuals: np.ndarray = field(repr=False)

    def predict(self, inverse_n: np.ndarray | float) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(inverse_n, dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "intercept": self.intercept, "slope": self.slope,
                "r_squared": self.r_squared, "sizes": self.sizes, "values": self.values,
                "residuals": self.residuals}


def fit_inverse_n(metric: str, sizes: Sequence[int], values: Sequence[float]) -> LineFit:
    """Least-squares line of VALUES against 1/SIZES, with R² and residuals."""
    n = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if n.shape != y.shape or n.ndim != 1 or np.unique(n).size < 2:
        raise StatisticsError("a line in 1/N needs values at two or more different N")
    x = 1.0 / n
    design = np.column_stack([np.ones_like(x), x])
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    fitted = intercept + slope * x
    residuals = y - fitted
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residuals**2).sum()) / total if total > 0 else float("nan")
    return LineFit(metric, np.asarray(sizes, dtype=np.int64), y, float(intercept), float(slope), r2, residuals)


def size_grid(n_total: int, points: int = DEFAULT_POINTS) -> tuple[np.ndarray, str | None]:
    """The N grid for a set of N_TOTAL images, and a note when it had to be scaled down."""
    if points < MIN_POINTS:
        raise StatisticsError(f"FID∞ needs at least {MIN_POINTS} sizes, got {points}")
    low, high = PAPER_GRID
    if n_total >= high:
        return np.rint(np.linspace(low, high, points)).astype(np.int64), None
    if n_total < 2 * MIN_GRID_SIZE:
        raise StatisticsError(f"FID∞ needs at least {2 * MIN_GRID_SIZE} generated images to extrapolate from "
                              f"(subsets of {MIN_GRID_SIZE} or more); the set has {n_total}")
    start = max(MIN_GRID_SIZE, round(n_total / 10))
    sizes = np.unique(np.rint(np.linspace(start, n_total, points)).astype(np.int64))
    floor = f" (floor {MIN_GRID_SIZE})" if start == MIN_GRID_SIZE else ""
    note = (f"the generated set has {n_total} images, fewer than the {high} of Chong & Forsyth's grid "
            f"linspace({low}, {high}, {points}): using {sizes.size} sizes in linspace({start}, {n_total}){floor}")
    return sizes, note


def check_sizes(sizes: Sequence[int], n_total: int) -> np.ndarray:
    """User-given sizes: whole numbers in [2, N_TOTAL], at least `MIN_POINTS` different ones; sorted."""
    arr = np.asarray(list(sizes))
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise StatisticsError("sizes must be whole numbers")
    bad = [int(s) for s in arr if not 2 <= s <= n_total]
    if bad:
        raise StatisticsError(f"size {bad[0]} is impossible: subsets of the generated set hold 2 to {n_total} images")
    arr = np.unique(arr.astype(np.int64))
    if arr.size < MIN_POINTS:
        raise StatisticsError(f"FID∞ needs at least {MIN_POINTS} different sizes, got {arr.size}")
    return arr


def subset_indices(n_total: int, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """One sorted random subset (without replacement) per size, from ``default_rng(seed)``, in order."""
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise StatisticsError(f"the seed must be a non-negative whole number, got {seed}")
    rng = np.random.default_rng(int(seed))
    return [np.sort(rng.choice(n_total, size=int(n), replace=False)) for n in sizes]


@dataclass(frozen=True)
class Extrapolation:
    """FID∞ (and KID∞) with the per-N values and fits they come from."""

    fid: LineFit
    kid: LineFit | None
    n_generated: int
    n_reference: int | None  # None when the reference is statistics
    seed: int
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"fid_infinity": self.fid.intercept, "kid_infinity": None if self.kid is None else self.kid.intercept,
                "fid": self.fid.as_dict(), "kid": None if self.kid is None else self.kid.as_dict(),
                "n_generated": self.n_generated, "n_reference": self.n_reference, "seed": self.seed,
                "notes": list(self.notes), "method": "Chong & Forsyth 2020: least squares of value_N on 1/N, "
                                                     "intercept = value at N = infinity"}


def _kid_per_subset(ref: np.ndarray, gen: np.ndarray, subsets: list[np.ndarray]) -> np.ndarray:
    """Unbiased MMD² of each subset of GEN against all of REF, in one pass over each kernel."""
    indicator = np.zeros((gen.shape[0], len(subsets)))
    for j, rows in enumerate(subsets):
        indicator[rows, j] = 1.0
    sizes = indicator.sum(axis=0)
    within_g = weighted_kernel_sums(gen, indicator) - indicator.T @ kernel_diagonal(gen)
    ones = np.ones(ref.shape[0])
    within_r = float(weighted_kernel_sums(ref, ones)[0] - kernel_diagonal(ref).sum())
    cross = weighted_kernel_sums(ref, ones, gen, indicator)
    return unbiased_mmd2_from_sums(within_g, within_r, cross, sizes, ref.shape[0])


def fid_infinity(reference: Reference, generated: np.ndarray, *, sizes: Sequence[int] | None = None,
                 points: int = DEFAULT_POINTS, seed: int = 0, kid: bool = True, unbiased: bool = True,
                 progress: bool = False) -> Extrapolation:
    """FID∞ (and KID∞ when ``kid`` and the reference has features) of GENERATED against REFERENCE.

    ``reference``: features (N_r, d) or statistics ``(mu, sigma)``; ``sizes`` overrides the grid.
    """
    gen = _features64(generated, "the generated set")
    n_total, d = gen.shape
    notes: list[str] = []
    if sizes is None:
        grid, note = size_grid(n_total, points)
        if note:
            notes.append(note)
    else:
        grid = check_sizes(sizes, n_total)
    if grid.max() < d:
        notes.append(f"every subset has fewer images than dimensions (N <= {grid.max()} < d = {d}): FID's bias is "
                     "not linear in 1/N there, so FID∞ is only a rough extrapolation")
    subsets = subset_indices(n_total, grid, seed)
    engine = FrechetResampler(reference, [gen], unbiased=unbiased)
    from fidlens.core.progress import progress_bar

    values = np.empty(len(subsets))
    with progress_bar(total=len(subsets), desc="FID at each N", unit="size", disable=not progress) as bar:
        for j, rows in enumerate(subsets):
            counts = np.zeros(n_total, dtype=np.int64)
            counts[rows] = 1
            values[j] = engine.fids([counts])[0]
            bar.update(1)
    fid_fit = fit_inverse_n("FID", grid, values)
    kid_fit = None
    n_ref = None
    if not isinstance(reference, tuple):
        ref = _features64(reference, "the reference")
        _same_dim(ref.shape[1], d, ("the reference", "the generated set"))
        n_ref = ref.shape[0]
        if kid:
            kid_fit = fit_inverse_n("KID", grid, _kid_per_subset(ref, gen, subsets))
    elif kid:
        notes.append("no KID∞: the reference is statistics (mu, sigma); KID needs its per-image features")
    return Extrapolation(fid_fit, kid_fit, n_total, n_ref, int(seed), tuple(notes))


# ----------------------------------------------------------------------------- figure


def _spread_ticks(x: np.ndarray, sizes: np.ndarray, min_gap: float) -> tuple[list[float], list[str]]:
    """Top-axis N labels no closer than MIN_GAP in 1/N, from the largest 1/N (smallest N) down."""
    kept: list[float] = []
    labels: list[str] = []
    for xv, n in sorted(zip(x, sizes), reverse=True):
        if not kept or kept[-1] - xv >= min_gap:
            kept.append(float(xv))
            labels.append(str(int(n)))
    return kept, labels


def draw_panel(ax, fit: LineFit, scale: float = 1.0, unit: str = "") -> None:
    """One fit on AX: the values at N, the line and its intercept (the value at N = ∞)."""
    from matplotlib.ticker import MaxNLocator

    x = 1.0 / fit.sizes.astype(np.float64)
    right = float(x.max()) * 1.05
    line_x = np.linspace(0.0, right, 50)
    ax.plot(x, fit.values * scale, "o", color="C0", label=f"{fit.metric} at N (seeded random subsets)")
    ax.plot(line_x, fit.predict(line_x) * scale, "-", color="C1",
            label=f"fit: {fit.intercept * scale:.4g} + {fit.slope * scale:.4g}/N (R² {fit.r_squared:.4f})")
    ax.plot([0.0], [fit.intercept * scale], "*", color="C3", markersize=13, clip_on=False,
            label=f"{fit.metric}∞ = {fit.intercept * scale:.4g}")
    ax.set_xlabel("1 / N   (N = generated images used)")
    ax.set_ylabel(f"{fit.metric}{unit}")
    ax.set_xlim(-0.02 * right, right)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    top = ax.secondary_xaxis("top")
    ticks, labels = _spread_ticks(x, fit.sizes, 0.12 * right)
    top.set_xticks(ticks, labels, fontsize=7)
    top.set_xlabel("N (images)", fontsize=7, loc="left")


def draw_inverse_n(result: Extrapolation, *, title: str | None = None):
    """The figure: FID (and KID × 1000) against 1/N with the fitted line and its intercept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(result.fid, 1.0, "")] + ([(result.kid, 1000.0, " × 1000")] if result.kid is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (fit, scale, unit) in zip(axes[0], panels):
        draw_panel(ax, fit, scale, unit)
    fig.suptitle(title or f"Bias removed (Chong & Forsyth 2020): value at N vs 1/N, {result.n_generated} generated "
                 f"images, seed {result.seed}", fontsize=9)
    fig.tight_layout()
    return fig
