"""A resampling run: optimise per-candidate weights, evaluate FID / control-space FID / KID, log, checkpoint.

Kynkäänniemi et al. (ICLR 2023, Sec. 3) learn one log-weight per candidate so that the
weighted candidate statistics match the reals in a chosen feature space, then draw sets
with p = softmax(w) and measure FID. Matching only ImageNet class histograms moves FID a
lot while CLIP-FID barely moves: FID's "perceptual null space". The second feature space is
any registered detector (`control`: CLIP by default, ``pixels`` offline); its FID goes to the
log column the space names (``clip_fid``, ``pixels_fid``).

Outputs in the run directory: ``log.csv`` and ``log.jsonl`` (one row per evaluation, the
uniform baseline first), ``checkpoint.npz`` (weights + optimiser state + log as plain arrays
and JSON, never a pickle, written at every evaluation: a killed run resumes from it with
identical results), ``best_weights.npy`` at every new best FID, and at the end
``summary.json`` (strict JSON: metrics not computed are null), ``curves.png`` and the
figures of the best weights.

KID, the costliest metric per evaluation, comes from kernels computed once for the whole
pool (``kid_cache``), and the objective from the k x k route of ``optimizer``; the
evaluation's numbers are those of ``fidlens.metrics.kid`` and ``fidlens.metrics.frechet``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import resource
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fidlens.core.atomic import atomic_path, write_text_atomic
from fidlens.core.errors import FidlensError
from fidlens.metrics.frechet import FewSamplesWarning, ReferenceStatistics, mean_and_covariance
from fidlens.core.jsonio import dumps_strict, write_json
from fidlens.core.progress import progress_bar
from fidlens.studies.resampling.checkpoint import Checkpoint, CheckpointMismatch, read_checkpoint, save_checkpoint
from fidlens.studies.resampling.inputs import FeatureBank, RunInputs
from fidlens.studies.resampling.kid_cache import PooledKid, drawn_kid
from fidlens.studies.resampling.modes import Mode, matched_features
from fidlens.studies.resampling.optimizer import ResamplingOptimizer, WeightedFrechet, draw_indices

LOG_COLUMNS = ["iteration", "loss", "fid", "clip_fid", "kid_x1000", "w_min", "w_median", "w_max",
               "peak_memory_mb", "elapsed_s"]


def log_columns(control_column: str) -> list[str]:
    """LOG_COLUMNS with the control space's FID column in the place of clip_fid."""
    return [control_column if column == "clip_fid" else column for column in LOG_COLUMNS]


@dataclass
class ResamplingSettings:
    """The paper's defaults; the demo config shrinks iterations and draw sizes."""

    iterations: int = 100_000
    lr: float = 10.0
    eval_every: int = 500
    eval_samples: int = 50_000
    eval_repeats: int = 3
    seed: int = 0
    chunk_size: int = 8192
    kid_subsets: int = 100
    kid_subset_size: int = 1000


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Evaluator:
    """FID, the control space's FID (e.g. CLIP-FID) and KID×1000 of seeded draws; real statistics prepared once."""

    def __init__(self, inputs: RunInputs, settings: ResamplingSettings,
                 fid_ref: ReferenceStatistics | None = None):
        self.inputs, self.settings = inputs, settings
        self.fid_ref = fid_ref or ReferenceStatistics(*mean_and_covariance(inputs.reals.pool3))
        reals, cands = inputs.reals.pool3, inputs.candidates.pool3
        # every KID needs kernels between real and candidate rows only: computed once when they fit
        self.kid_cache = PooledKid(reals, cands) if PooledKid.fits(len(reals), len(cands)) else None
        use_control = (inputs.clip_skip_reason is None and inputs.reals.control is not None
                       and inputs.candidates.control is not None)
        self.control_ref = ReferenceStatistics(*mean_and_covariance(inputs.reals.control)) if use_control else None

    def _measure(self, indices: np.ndarray, rep_seed: int) -> dict[str, float]:
        cand = self.inputs.candidates
        drawn = cand.pool3[indices]
        out = {"fid": self.fid_ref.fid_of_features(drawn)}
        out[self.inputs.control.column] = (self.control_ref.fid_of_features(cand.control[indices]) if self.control_ref
                                           else float("nan"))
        kid, _ = drawn_kid(self.kid_cache, self.inputs.reals.pool3, cand.pool3, indices,
                           num_subsets=self.settings.kid_subsets, max_subset_size=self.settings.kid_subset_size,
                           seed=rep_seed)
        out["kid_x1000"] = 1000 * kid
        return out

    def evaluate(self, w: np.ndarray | None, iteration: int) -> dict[str, float]:
        """Minimum over repeats of each metric; w=None is the uniform baseline (no replacement)."""
        n = len(self.inputs.candidates.pool3)
        m = self.settings.eval_samples
        results = []
        for rep in range(self.settings.eval_repeats):
            seed = self.settings.seed * 1_000_003 + iteration * 101 + rep
            if w is None:
                indices = np.random.default_rng(seed).choice(n, size=min(m, n), replace=False)
            else:
                indices = draw_indices(torch.as_tensor(w), m, seed)
            results.append(self._measure(indices, seed))
        return {key: _min_or_nan([r[key] for r in results]) for key in results[0]}


def _is_number(value: Any) -> bool:
    """A computed metric (a checkpoint's rows hold None where the log has NaN)."""
    return isinstance(value, (int, float)) and not np.isnan(value)


def _min_or_nan(values: list[float]) -> float:
    """The best (lowest) of the repeats; NaN only when the metric was not computed (no control space)."""
    finite = [v for v in values if not np.isnan(v)]
    return float(min(finite)) if finite else float("nan")


def _fingerprint(inputs: RunInputs, settings: ResamplingSettings) -> str:
    import hashlib

    digest = hashlib.sha256()
    digest.update(inputs.mode.tag.encode())
    for array in (inputs.reals.pool3, inputs.candidates.pool3):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array[:: max(1, len(array) // 64)]).tobytes())
    fixed = {k: v for k, v in asdict(settings).items() if k != "iterations"}
    digest.update(json.dumps(fixed, sort_keys=True).encode())
    if inputs.reals.control is not None:  # a checkpoint's rows carry the control FIDs they were logged with
        digest.update(inputs.control.column.encode())
        for array in (inputs.reals.control, inputs.candidates.control):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array[:: max(1, len(array) // 64)]).tobytes())
    return digest.hexdigest()[:16]


class ResamplingRun:
    """Owns the run directory: resume, optimise, evaluate, log, checkpoint, draw figures."""

    def __init__(self, inputs: RunInputs, settings: ResamplingSettings, outdir: str | os.PathLike,
                 device: torch.device | str = "cpu", progress: bool = True, log: Callable[[str], None] = print,
                 published: Mapping[str, Any] | None = None):
        self.inputs, self.settings = inputs, settings
        self.published = published  # reference values to show beside ours; they never enter the computation
        self.outdir = Path(outdir)
        self.device = torch.device(device)
        self.progress, self.log = progress, log
        self._notes: set[str] = set()
        real, cand, self.kept_columns = matched_features(
            inputs.mode, (inputs.reals.pool3, inputs.reals.logits), (inputs.candidates.pool3, inputs.candidates.logits))
        with self._few_samples_noted():
            mu_r, sigma_r = mean_and_covariance(real)
            # pre_logits matches pool3 itself: the evaluation's reference statistics and the factor of
            # their covariance are the objective's too (one 2048 x 2048 eigh instead of two)
            fid_ref = ReferenceStatistics(mu_r, sigma_r) if inputs.mode.name == "pre_logits" else None
            features = torch.from_numpy(np.ascontiguousarray(cand, dtype=np.float32)).to(self.device)
            self.objective = WeightedFrechet(features, mu_r, sigma_r, chunk_size=settings.chunk_size,
                                             real_factor=fid_ref._factor if fid_ref else None)
            self.optimizer = ResamplingOptimizer(self.objective, lr=settings.lr)
            self.evaluator = Evaluator(inputs, settings, fid_ref=fid_ref)
        self.rows: list[dict] = []
        self.best: dict | None = None
        self.fingerprint = _fingerprint(inputs, settings)
        self.elapsed_before = 0.0

    @contextlib.contextmanager
    def _few_samples_noted(self) -> Iterator[None]:
        """FewSamplesWarning (N < d) once per message as a plain log line, not a warning that quotes
        this module's source line each time; any other warning is shown as usual."""
        with warnings.catch_warnings():  # restores the filters and showwarning afterwards
            warnings.simplefilter("always", FewSamplesWarning)
            shown = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                if not issubclass(category, FewSamplesWarning):
                    shown(message, category, filename, lineno, file, line)
                elif str(message) not in self._notes:
                    self._notes.add(str(message))
                    self.log(f"note: {message} (compare the rows of this log with each other)")

            warnings.showwarning = show
            yield

    # -- persistence -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.outdir / "checkpoint.npz"

    def _save_checkpoint(self, elapsed: float) -> None:
        state = self.optimizer.state_dict()
        save_checkpoint(self.checkpoint_path, Checkpoint(self.fingerprint, state["w"].numpy(), state["iteration"],
                                                         state["lr"], self.rows, self.best, elapsed))

    def _try_resume(self) -> bool:
        """Resume from checkpoint.npz when it is this run's; anything else is reported and replaced."""
        legacy = self.outdir / "checkpoint.pt"
        if not self.checkpoint_path.is_file():
            if legacy.is_file():  # pickles can run code: never opened, whatever they hold
                self.log(f"resampling: ignoring {legacy} (pickled checkpoints are never loaded); starting over")
            return False
        try:
            state = read_checkpoint(self.checkpoint_path, self.fingerprint, len(self.inputs.candidates.pool3))
            self.optimizer.load_state_dict({"w": torch.from_numpy(state.w), "iteration": state.iteration,
                                            "lr": state.lr})
        except (CheckpointMismatch, FidlensError) as exc:
            self.log(f"resampling: not resuming from {self.checkpoint_path}: {exc}; starting over")
            return False
        self.rows, self.best, self.elapsed_before = state.rows, state.best, state.elapsed
        self.log(f"resampling: resumed at iteration {self.optimizer.iteration} from {self.checkpoint_path}")
        return True

    def _write_logs(self) -> None:
        with atomic_path(self.outdir / "log.csv") as tmp, open(tmp, "w", newline="") as handle:
            columns = log_columns(self.inputs.control.column)
            extra = sorted({k for row in self.rows for k in row if k not in columns})
            writer = csv.DictWriter(handle, fieldnames=columns + extra)
            writer.writeheader()
            writer.writerows(self.rows)
        write_text_atomic(self.outdir / "log.jsonl", "".join(dumps_strict(r) + "\n" for r in self.rows))

    # -- one evaluation ------------------------------------------------------------------------
    def _group_mass(self, w: np.ndarray | None) -> dict[str, float]:
        groups = self.inputs.candidates.groups
        if groups is None:
            return {}
        p = np.full(len(groups), 1 / len(groups)) if w is None else np.exp(w - w.max()) / np.exp(w - w.max()).sum()
        return {f"mass:{g}": float(p[groups == g].sum()) for g in np.unique(groups)}

    def _evaluate(self, iteration: int, loss: float, w: np.ndarray | None, start: float) -> dict:
        metrics = self.evaluator.evaluate(w, iteration)
        weights = np.zeros(len(self.inputs.candidates.pool3)) if w is None else w
        row = {"iteration": iteration, "loss": loss, **metrics,
               "w_min": float(weights.min()), "w_median": float(np.median(weights)), "w_max": float(weights.max()),
               "peak_memory_mb": round(peak_memory_mb(self.device), 1),
               "elapsed_s": round(self.elapsed_before + time.time() - start, 2), **self._group_mass(w)}
        self.rows.append(row)
        label = "baseline (uniform draw)" if w is None else f"it. {iteration}/{self.settings.iterations}"
        space = self.inputs.control
        control = "skipped" if np.isnan(row[space.column]) else f"{row[space.column]:.2f}"
        self.log(f"{label}: loss {loss:.5f}  FID {row['fid']:.2f}  {space.title} {control}  "
                 f"KIDx1000 {row['kid_x1000']:.2f}  "
                 f"elapsed {row['elapsed_s']:.0f}s")
        return row

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> dict:
        with self._few_samples_noted():
            return self._run()

    def _run(self) -> dict:
        self.outdir.mkdir(parents=True, exist_ok=True)
        if self.inputs.clip_skip_reason:
            self.log(self.inputs.clip_skip_reason)
        start = time.time()
        if not self._try_resume():
            self.rows, self.best = [], None
            self._evaluate(0, self.objective.loss(self.optimizer.w), None, start)
        bar = progress_bar(total=self.settings.iterations, initial=self.optimizer.iteration,
                           desc=f"resampling {self.inputs.mode.tag}", unit="it", disable=not self.progress,
                           dynamic_ncols=True)
        with bar:
            while self.optimizer.iteration < self.settings.iterations:
                loss = self.optimizer.step()
                iteration = self.optimizer.iteration
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if iteration == 1 or iteration % self.settings.eval_every == 0 or iteration == self.settings.iterations:
                    w = self.optimizer.w.detach().cpu().numpy()
                    row = self._evaluate(iteration, loss, w, start)
                    if self.best is None or row["fid"] < self.best["fid"]:
                        self.best = {"iteration": iteration, "fid": row["fid"]}
                        self._save_best(w)
                    self._write_logs()
                    self._save_checkpoint(self.elapsed_before + time.time() - start)
        self._write_logs()
        from fidlens.studies.resampling.figures import plot_curves, pool_floor

        floor = pool_floor(self.inputs, ref=self.evaluator.fid_ref)  # the reals' statistics: made once
        summary = self.summary()
        # The pool's best whole set against the reals: what picking sets, not images, would reach.
        summary["pool_floor"] = None if floor is None else {"set": floor[0], "fid": floor[1], "images": floor[2]}
        summary["weights_vs_delta_fid"] = self._weights_vs_delta_fid()
        write_json(self.outdir / "summary.json", summary)
        plot_curves(self.rows, self.outdir / "curves.png", title=self._title(), floor=floor, published=self.published,
                    control=self.inputs.control)
        self._draw_best_figures()
        self.log(summary["sentence"])
        return summary

    def _weights_vs_delta_fid(self) -> dict:
        """Correlation of the final weights with −ΔFID of each candidate (added to summary.json and the log)."""
        from fidlens.studies.resampling.weights_vs_attribution import weights_vs_delta_fid

        ref = self.evaluator.fid_ref
        result = weights_vs_delta_fid(self.optimizer.w.detach().cpu().numpy(), self.inputs.candidates.pool3,
                                      ref.mu, ref.sigma)
        if "skipped" in result:
            self.log(f"weights vs -ΔFID: not computed ({result['skipped']})")
        else:
            self.log(f"weights vs -ΔFID of the {result['candidates']} candidates (exact leave-one-out in the pool): "
                     f"Pearson {result['pearson']:.3f}, Spearman {result['spearman']:.3f}")
        return result

    def _title(self) -> str:
        d = self.inputs.description
        return f"resampling {self.inputs.mode.tag} · {d.get('pool', 'candidates')} vs {d.get('reals', 'reals')}"

    def _save_best(self, w: np.ndarray) -> None:
        """The weights of a new best FID; its figures are drawn once, at the end (see _draw_best_figures)."""
        with atomic_path(self.outdir / "best_weights.npy") as tmp:
            np.save(tmp, w)

    def _draw_best_figures(self) -> None:
        """Grids (and class histogram) of the best weights, from best_weights.npy (exact float64 w).

        Drawing them at every new best cost seconds each time and only the last set survived;
        a resumed run draws them from the file the same way.
        """
        from fidlens.studies.resampling.figures import save_best_figures

        path = self.outdir / "best_weights.npy"
        if self.best is not None and path.is_file():
            save_best_figures(self.inputs, self.outdir, np.load(path), draw_size=self.settings.eval_samples,
                              seed=self.settings.seed)

    def summary(self) -> dict:
        baseline, evaluated = self.rows[0], self.rows[1:]
        best = min(evaluated, key=lambda r: r["fid"]) if evaluated else baseline
        last = evaluated[-1] if evaluated else baseline
        out = {"mode": self.inputs.mode.tag, "iterations": self.optimizer.iteration,
               "candidates": len(self.inputs.candidates.pool3), "reals": len(self.inputs.reals.pool3),
               "kept_feature_columns": len(self.kept_columns), "baseline": baseline, "best": best, "last": last,
               self.inputs.control.column: self.inputs.clip_skip_reason or "computed",
               "control_detector": None if self.inputs.clip_skip_reason else self.inputs.control.as_dict(),
               "settings": asdict(self.settings),
               **self.inputs.description, "published": beside_published(self.rows, self.published)}
        sentence = (f"{self.inputs.mode.tag}: FID {baseline['fid']:.2f} (uniform draw) -> {best['fid']:.2f} "
                    f"(best, iteration {best['iteration']})")
        space = self.inputs.control
        if not self.inputs.clip_skip_reason and all(_is_number(row.get(space.column)) for row in (baseline, best)):
            sentence += f"; {space.label} {baseline[space.column]:.2f} -> {best[space.column]:.2f} at that iteration"
        masses = {k: (baseline[k], last[k]) for k in baseline if k.startswith("mass:")}
        if masses:
            sentence += "; weight mass " + ", ".join(f"{k[5:]} {a:.1%} -> {b:.1%}" for k, (a, b) in masses.items())
        if self.published and "fid" in self.published:
            marks = ", ".join(f"{fid:.2f} (iteration {i})" for i, fid in zip(self.published["iterations"],
                                                                              self.published["fid"]))
            sentence += f"; published ({self.published.get('source', 'release')}) FID {marks}"
        out["sentence"] = sentence
        return out


def beside_published(rows: list[dict], published: Mapping[str, Any] | None) -> dict | None:
    """The published values with ours at the same iterations under ``ours`` (None: not evaluated there).

    Ours come from the log's rows, so the comparison in summary.json is the log's own numbers;
    None when nothing was published for this mode.
    """
    if published is None:
        return None
    evaluated = {int(row["iteration"]): row for row in rows[1:]}  # rows[0] is the uniform baseline
    metrics = [key for key in published if key not in ("source", "iterations")]
    ours = {key: [evaluated[i].get(key) if i in evaluated else None for i in published["iterations"]]
            for key in metrics}
    return {**published, "ours": ours}


def require_logits(mode: Mode, *banks: FeatureBank, detector_name: str = "the detector") -> str | None:
    """None when the mode can run, else the message that says why it is skipped."""
    if mode.needs_logits and any(b.logits is None for b in banks):
        return (f"resampling mode {mode.tag} skipped: it needs logits and {detector_name} has none "
                "(use inception-2015-12-05.pt or pt_inception-2015-12-05-6726825d.pth)")
    return None
