"""One GPU check: exactness and speed of every fidlens GPU path, as one table (and JSON).

    python benchmarks/gpu_check.py [--json results/gpu_check.json]      # needs one CUDA GPU
    python benchmarks/gpu_check.py --dry-run-cpu                          # tiny sizes, CPU only

Sections (each time-boxed; a failure or time-out becomes one row saying so, and the rest run):
  fid_orl     FID of the ORL demo sets (subjects 1-20 vs 21-40) on GPU vs CPU: relative difference (bar 1e-4)
  features    img/s of fidlens vs the TorchScript default_1.pt at batch 64 and 256, peak GPU memory
  generators  random-weight NVIDIA-layout StyleGAN2 256² and StyleGAN3-T/-R 1024² (written with
              fidlens' pickle writer, read back with its loader): img/s, max pixel difference GPU vs CPU
  heatmap     one FID sensitivity heatmap against N = 50,000 (synthetic statistics): s per image
  resampling  one SGD iteration over 250,000 x 2048 synthetic features: s per iteration, peak GPU memory
  pairs       the good/bad-pairs study on a small slice (PPCA demo generator): s
Without a visible CUDA device it prints one line and exits 2 (unless --dry-run-cpu). It installs
nothing and reads only the repository and the cached default_1.pt; on one GPU it is sized to
finish in under 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30


@dataclass
class Row:
    section: str
    metric: str
    value: float | str | None
    unit: str = ""
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    """Everything that scales; `tiny` keeps each section's code path but runs in seconds on a CPU."""

    orl_images: int | None  # per side; None: all 200
    feature_batches: tuple[int, ...]
    feature_image: int
    sg2_res: int
    sg3_res: int
    sg_channels: tuple[int, int]  # (channel_base, channel_max) for StyleGAN2; StyleGAN3 uses 2x for -R
    sg_seeds: int
    sg_cpu_seeds: int
    heatmap_n: int
    heatmaps: int
    pool: tuple[int, int]
    pairs_images: int
    repeats: int
    budget_s: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def full() -> Sizes:
        return Sizes(None, (64, 256), 256, 256, 1024, (32768, 512), 8, 2, 50_000, 3, (250_000, 2048), 200, 3,
                     {"fid_orl": 75, "features": 75, "generators": 120, "heatmap": 45, "resampling": 60, "pairs": 45})

    @staticmethod
    def tiny() -> Sizes:
        # Generous boxes: the dry run checks the code paths, on whatever CPU (shared, loaded) runs it.
        return Sizes(6, (1, 2), 64, 16, 16, (256, 16), 2, 2, 50_000, 1, (2_000, 64), 6, 1,
                     dict.fromkeys(("fid_orl", "features", "generators", "heatmap", "resampling", "pairs"), 900))


class SectionTimeout(Exception):
    pass


@contextmanager
def time_box(seconds: float) -> Iterator[None]:
    """Raise SectionTimeout in the section when it runs past its box (SIGALRM; main thread, POSIX)."""
    def expire(signum, frame):
        raise SectionTimeout(f"ran past its {seconds:.0f} s time box")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _seeded_random_inception():
    """The Inception graph with seeded random weights, for machines without default_1.pt.

    GPU-vs-CPU agreement and throughput depend on the graph, not on the trained values, so
    these rows stay meaningful; the table says which weights were used.
    """
    from fidlens.detectors.inception import FidInceptionV3

    model = FidInceptionV3(with_logits=False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("weight") and tensor.ndim == 4:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (2.0 / tensor[0].numel()) ** 0.5)
            elif name.endswith((".var", ".gamma")):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return model.eval()


class Check:
    """Shared state of one run: the device, the sizes, the detector(s), a scratch folder."""

    def __init__(self, sizes: Sizes, device: torch.device, scratch: Path):
        self.sizes, self.device, self.scratch = sizes, device, scratch
        self._detectors: dict[str, object] = {}

    def detector(self, device: torch.device):
        from fidlens.assets.store import DEFAULT_INCEPTION, default_inception_path
        from fidlens.detectors.inception_weights import load_inception

        key = str(device)
        if key not in self._detectors:
            if default_inception_path().is_file():
                self._detectors[key] = load_inception(default_inception_path(), device=device,
                                                      verify_sha256=DEFAULT_INCEPTION.sha256)
            else:
                self._detectors[key] = _seeded_random_inception().to(device)
        return self._detectors[key]

    @property
    def weights_label(self) -> str:
        from fidlens.assets.store import default_inception_path

        if default_inception_path().is_file():
            return "default_1.pt"
        return "seeded random weights (default_1.pt absent: precision and speed only, not real FIDs)"

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> int:
        if self.device.type != "cuda":
            return 0
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.memory_allocated(self.device)

    def peak_gib(self, baseline: int = 0) -> float | None:
        if self.device.type != "cuda":
            return None
        return (torch.cuda.max_memory_allocated(self.device) - baseline) / GIB


# --- sections -------------------------------------------------------------------------------


def fid_orl(c: Check) -> list[Row]:
    from fidlens.studies.demo import export_subjects
    from fidlens.metrics.frechet import frechet_distance
    from fidlens.extraction.pipeline import ExtractionSettings, compute_features, statistics_from_features

    ref, cmp_ = c.scratch / "orl_ref", c.scratch / "orl_cmp"
    orl = REPO / "data" / "orl_faces"
    if not ref.is_dir():
        export_subjects(orl, 1, 20, ref)
        export_subjects(orl, 21, 40, cmp_)
    settings = ExtractionSettings(batch_size=50, workers=0, progress=False, cache="")
    fids = {}
    for device in dict.fromkeys([torch.device("cpu"), c.device]):
        detector = c.detector(device)
        stats = [statistics_from_features(compute_features(p, detector, max_images=c.sizes.orl_images,
                                                           subset_seed=0 if c.sizes.orl_images else None,
                                                           settings=settings)) for p in (ref, cmp_)]
        fids[device.type] = frechet_distance(stats[0].mu, stats[0].sigma, stats[1].mu, stats[1].sigma)
    gpu = fids.get("cuda", fids["cpu"])
    rel = abs(gpu - fids["cpu"]) / abs(fids["cpu"])
    return [Row("fid_orl", "weights", c.weights_label),
            Row("fid_orl", "FID CPU", round(fids["cpu"], 6)), Row("fid_orl", f"FID {c.device.type}", round(gpu, 6)),
            Row("fid_orl", "relative difference", float(f"{rel:.3e}"), "", "PASS (bar 1e-4)" if rel <= 1e-4 else "FAIL (bar 1e-4)")]


def _scripted_default_1(device: torch.device):
    """TorchScript default_1.pt, for the speed comparison only.

    torch.jit.load can run code from its file: it is used here only, in this benchmark, on
    the pinned default_1.pt whose sha256 is verified first; fidlens itself never calls it.
    """
    from fidlens.assets.store import DEFAULT_INCEPTION, default_inception_path, file_sha256

    path = default_inception_path()
    if file_sha256(path) != DEFAULT_INCEPTION.sha256:
        raise RuntimeError(f"{path} does not have the pinned sha256; not loading it with torch.jit.load")
    return torch.jit.load(str(path), map_location=device).eval()


def features(c: Check) -> list[Row]:
    """fidlens's throughput, and the TorchScript default_1.pt's beside it when the file is here."""
    from fidlens.assets.store import default_inception_path
    from fidlens.detectors.inception import FidInceptionV3

    ours = c.detector(c.device)
    runs = {"fidlens": lambda x: ours.extract(x).pool3}
    rows = []
    if default_inception_path().is_file():
        scripted = _scripted_default_1(c.device)
        runs["TorchScript default_1.pt"] = lambda x: scripted(FidInceptionV3.normalize(x))
    else:
        rows.append(Row("features", "TorchScript comparison", None, "",
                        f"skipped: no default_1.pt at {default_inception_path()} (run `make weights`); "
                        f"fidlens measured with {c.weights_label}"))
    gen = torch.Generator().manual_seed(0)
    s = c.sizes.feature_image
    for batch in c.sizes.feature_batches:
        images = torch.randint(0, 256, (batch, 3, s, s), dtype=torch.uint8, generator=gen).to(c.device)
        outs = {}
        for name, run in runs.items():
            with torch.inference_mode():
                run(images)  # warm-up (TorchScript profiles its first calls)
                baseline = c.reset_peak()
                repeats, start = c.sizes.repeats, time.perf_counter()
                for _ in range(repeats):
                    outs[name] = run(images)
                c.sync()
                rate = repeats * batch / (time.perf_counter() - start)
            rows.append(Row("features", f"{name} batch {batch}", round(rate, 1), "img/s"))
            peak = c.peak_gib(baseline)
            if peak is not None:
                rows.append(Row("features", f"{name} batch {batch} peak memory", round(peak, 3), "GiB"))
        if len(outs) == 2:
            diff = (outs["fidlens"].float() - outs["TorchScript default_1.pt"].float()).abs().max().item()
            rows.append(Row("features", f"max |feature difference| batch {batch}", float(f"{diff:.2e}"), "",
                            "TorchScript runs under PyTorch's defaults (cuDNN TF32 allowed); fidlens exact"))
    return rows


def _generator_specs(sizes: Sizes) -> dict[str, tuple[type, dict]]:
    from fidlens.generators.stylegan2 import Generator as StyleGAN2
    from fidlens.generators.stylegan3 import Generator as StyleGAN3

    base, cmax = sizes.sg_channels
    z = 512 if sizes.sg2_res >= 256 else 16
    sg3 = dict(z_dim=z, c_dim=0, w_dim=z, img_channels=3, img_resolution=sizes.sg3_res,
               mapping_kwargs={"num_layers": 2})
    small = sizes.sg3_res < 256
    layers = {"num_layers": 4, "num_critical": 1, "margin_size": 2} if small else {}
    return {
        f"StyleGAN2 {sizes.sg2_res}²": (StyleGAN2, dict(
            z_dim=z, c_dim=0, w_dim=z, img_resolution=sizes.sg2_res, img_channels=3,
            mapping_kwargs={"num_layers": 8 if not small else 2},
            synthesis_kwargs={"channel_base": base, "channel_max": cmax, "conv_clamp": 256, "architecture": "skip",
                              "num_fp16_res": 4})),
        f"StyleGAN3-T {sizes.sg3_res}²": (StyleGAN3, dict(sg3, channel_base=base, channel_max=cmax, conv_kernel=3,
                                                          use_radial_filters=False, **layers)),
        f"StyleGAN3-R {sizes.sg3_res}²": (StyleGAN3, dict(sg3, channel_base=2 * base, channel_max=2 * cmax,
                                                          conv_kernel=1, use_radial_filters=True, **layers)),
    }


def generators(c: Check) -> list[Row]:
    from fidlens.generators.generate import images_for_seeds
    from fidlens.generators.load import load_generator
    from fidlens.generators.nvidia_pickle import save_nvidia_pickle

    rows = []
    for label, (cls, kwargs) in _generator_specs(c.sizes).items():
        try:
            torch.manual_seed(0)
            with torch.no_grad():
                G = cls(**kwargs)
                for name, p in G.named_parameters():  # zero-initialised biases / noise strengths: make them matter
                    if name.endswith(("bias", "noise_strength")):
                        p.add_(0.05 * torch.randn_like(p))
            path = c.scratch / f"{label.split()[0]}.pkl"
            save_nvidia_pickle(path, {"G_ema": (G, kwargs)})
            G = load_generator(path).eval()
            seeds = list(range(c.sizes.sg_seeds))
            images_for_seeds(G.to(c.device), seeds[:1], device=c.device)  # warm-up
            c.sync()
            start = time.perf_counter()
            on_device = torch.cat([images_for_seeds(G, [s], device=c.device) for s in seeds]).cpu()
            c.sync()
            rate = len(seeds) / (time.perf_counter() - start)
            rows.append(Row("generators", f"{label} on {c.device.type}", round(rate, 2), "img/s"))
            cpu_seeds = seeds[: c.sizes.sg_cpu_seeds]
            on_cpu = torch.cat([images_for_seeds(G.cpu(), [s], device="cpu") for s in cpu_seeds])
            diff = (on_cpu.int() - on_device[: len(cpu_seeds)].int()).abs().max().item()
            rows.append(Row("generators", f"{label} max pixel difference {c.device.type} vs CPU", int(diff), "levels",
                            f"{len(cpu_seeds)} seeds; " + ("PASS (bar 2)" if diff <= 2 else "FAIL (bar 2)")))
            del G
        except SectionTimeout as exc:  # keep the generators already measured
            rows.append(Row("generators", label, "FAILED", "", _one_line(exc)))
            break
        except Exception as exc:  # one row says what failed, the next generator still runs
            rows.append(Row("generators", label, "FAILED", "", _one_line(exc)))
        if c.device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _synthetic_statistics(n: int, shift: float, seed: int):
    """A 2048-d Gaussian with a low-rank-plus-diagonal covariance, labelled as N images (no sampling)."""
    from fidlens.metrics.stats import Statistics

    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(64, 2048)) * 0.3
    mu = np.abs(rng.normal(size=2048)) * 0.2 + shift
    sigma = basis.T @ basis + np.diag(rng.uniform(0.01, 0.05, size=2048))
    return Statistics(mu=mu, sigma=sigma, meta={"num_images": n})


def heatmap(c: Check) -> list[Row]:
    from fidlens.studies.heatmap import FidSensitivity

    n = c.sizes.heatmap_n
    start = time.perf_counter()
    sens = FidSensitivity(c.detector(c.device), _synthetic_statistics(n, 0.0, 1), _synthetic_statistics(n, 0.05, 2))
    c.sync()
    setup = time.perf_counter() - start
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (c.sizes.heatmaps, 3, 256, 256), dtype=torch.uint8, generator=gen)
    if c.device.type == "cuda":
        sens.explain(images[0].to(c.device))  # warm-up (cuDNN, CUDA context)
    start = time.perf_counter()
    for image in images:
        sens.explain(image.to(c.device))
    c.sync()
    per = (time.perf_counter() - start) / len(images)
    return [Row("heatmap", f"setup, N = {n:,}", round(setup, 3), "s"),
            Row("heatmap", f"per heatmap, N = {n:,}", round(per, 3), "s/image")]


def resampling(c: Check) -> list[Row]:
    from fidlens.studies.resampling.optimizer import ResamplingOptimizer

    n, d = c.sizes.pool
    gen = torch.Generator(device=c.device).manual_seed(0)
    features = torch.randn(n, d, generator=gen, device=c.device, dtype=torch.float32).abs_()
    mu_real = np.full(d, math.sqrt(2 / math.pi))
    sigma_real = np.eye(d) * (1 - 2 / math.pi)
    baseline = c.reset_peak()
    opt = ResamplingOptimizer.from_features(features, mu_real, sigma_real, lr=10.0)
    opt.step()  # the first step includes Σr^½
    c.sync()
    start = time.perf_counter()
    loss = opt.step()
    c.sync()
    per = time.perf_counter() - start
    rows = [Row("resampling", f"per iteration, {n:,} x {d}", round(per, 3), "s", f"loss {loss:.4g}")]
    peak = c.peak_gib(baseline)
    if peak is not None:
        rows.append(Row("resampling", "peak memory above the pool", round(peak, 3), "GiB",
                        ("PASS" if peak <= 8 else "FAIL") + " (target ≤ 8 GB; the release needs ≥ 26 GB)"))
    return rows


def pairs(c: Check) -> list[Row]:
    from fidlens.generators.ppca import fit_ppca
    from fidlens.studies.pairs.spec import parse_pairs
    from fidlens.studies.pairs.study import StudySettings, run_study

    G = fit_ppca(REPO / "data" / "orl_faces", z_dim=8, resolution=64).to(c.device)
    spec = parse_pairs({"probe_step": 0.5, "pairs": [{"bad": 3, "good": "3~5"}, {"bad": 9, "good": "9~2"}]})
    settings = StudySettings(num_images=c.sizes.pairs_images, latent_seed=0, fraction=0.1, delete_mode="refill",
                             batch_size=32)
    start = time.perf_counter()
    arrays = run_study(G, c.detector(c.device), spec, settings, progress=False)
    c.sync()
    seconds = time.perf_counter() - start
    return [Row("pairs", f"study on {c.sizes.pairs_images} images (refill)", round(seconds, 2), "s",
                f"{len(arrays['selected'])} selected")]


SECTIONS: dict[str, Callable[[Check], list[Row]]] = {
    "fid_orl": fid_orl, "features": features, "generators": generators, "heatmap": heatmap,
    "resampling": resampling, "pairs": pairs,
}


# --- driver ---------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def run_sections(check: Check, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        start = time.perf_counter()
        try:
            with time_box(check.sizes.budget_s.get(name, 60)), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = SECTIONS[name](check)
        except Exception as exc:  # fail soft: one row per failed section
            traceback.print_exc(limit=3, file=sys.stderr)
            got = [Row(name, "FAILED", None, "", _one_line(exc))]
        rows.extend(got)
        rows.append(Row(name, "section time", round(time.perf_counter() - start, 1), "s"))
        if check.device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def table(rows: list[Row]) -> str:
    cells = [("section", "metric", "value", "unit", "note")] + [
        (r.section, r.metric, "" if r.value is None else str(r.value), r.unit, r.note) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment(device: torch.device) -> dict:
    from fidlens.core import precision
    from fidlens import __version__

    env = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
           "fidlens": __version__, "device": str(device), "cpu_threads": torch.get_num_threads(),
           "gpu_precision": precision.configured()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(REPO / "results" / "gpu_check.json"), help="where the JSON goes")
    parser.add_argument("--dry-run-cpu", action="store_true",
                        help="run every section on the CPU at tiny sizes (tests the script, measures nothing)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    args = parser.parse_args(argv)
    if not args.dry_run_cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible; run it on a machine with one GPU (or --dry-run-cpu to test the script)",
              file=sys.stderr)
        return 2
    sizes = Sizes.tiny() if args.dry_run_cpu else Sizes.full()
    device = torch.device("cpu" if args.dry_run_cpu else "cuda")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fidlens-gpu-check-") as scratch:
        rows = run_sections(Check(sizes, device, Path(scratch)), args.only or list(SECTIONS))
    env = environment(device)
    env["total_s"] = round(time.perf_counter() - started, 1)
    env["dry_run_cpu"] = args.dry_run_cpu
    print(f"fidlens GPU check: {env.get('gpu', 'CPU dry run')}, torch {env['torch']}, {env['date']}, "
          f"{env['total_s']} s")
    print(table(rows))
    from fidlens.core.atomic import atomic_path

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps({"environment": env, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    return 1 if any(r.metric == "FAILED" or r.value == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
