"""GPU hours of config/paper.yaml: the work its plan names times the per-unit costs a GPU measured.

Why: the README states how long the paper config takes, and every number the README quotes must
come from code. The work (images, iterations, evaluations, heatmaps, pairs) is read from the
config's plan (`fidlens.workflow.targets.load_plan`); the per-unit costs from
``benchmarks/records/*.json`` (``benchmarks/gpu_check.py`` on a GPU, ``benchmarks/record.py`` on a
CPU). A cost no record measures comes from a named constant below with its reason, and a row
using one says so: "scaled" (a measured cost carried to other sizes by a stated rule) or
"assumed" (a guess with a range). Each row's hours are its work times its unit cost; the total
is the sum of the rows, its range the sums of their low and high ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fidlens.core.errors import FidlensError
from fidlens.studies.pairs.selection import selection_size
from fidlens.studies.resampling.modes import BINARY_MODES, Mode
from fidlens.workflow.targets import Plan, load_plan

REPO = Path(__file__).resolve().parents[3]
PAPER_CONFIG = REPO / "config" / "paper.yaml"
RECORDS = REPO / "benchmarks" / "records"

# --- facts and assumptions (each used by name in the rows and listed under the table) ----------

# Architecture and resolution of each network file the paper config can name (the asset
# registry's descriptions say the same; tests/test_paper_estimate.py checks they agree).
NETWORK_KINDS: dict[str, tuple[str, int]] = {
    "ffhq-fid50k_5.30-snapshot-022608.pkl": ("StyleGAN2", 256),
    "stylegan2-ffhq-256x256.pkl": ("StyleGAN2", 256),
    "ffhq.pkl": ("StyleGAN2-ADA", 1024),
    "metfaces.pkl": ("StyleGAN2-ADA", 1024),
    "stylegan3-t-ffhq-1024x1024.pkl": ("StyleGAN3-T", 1024),
    "stylegan3-t-metfaces-1024x1024.pkl": ("StyleGAN3-T", 1024),
    "stylegan3-r-ffhq-1024x1024.pkl": ("StyleGAN3-R", 1024),
    "stylegan3-r-metfaces-1024x1024.pkl": ("StyleGAN3-R", 1024),
}
# Inception's pool3 width and its number of logits (fidlens.detectors.inception; a test checks).
POOL3_DIM = 2048
NUM_LOGITS = 1008


@dataclass(frozen=True)
class Assumption:
    """A cost factor no record measures: its range and why that range."""

    name: str
    low: float
    high: float
    why: str


SG2ADA_1024_SLOWDOWN = Assumption(
    "SG2ADA_1024_SLOWDOWN", 2.0, 6.0,
    "StyleGAN2-ADA at 1024² is StyleGAN2 with two more synthesis blocks (512², 1024²); channels halve "
    "as the side doubles, so each block's convolutions cost about the same FLOPs while its activations "
    "grow 4× per block: 2–6× the time of the measured StyleGAN2 256² net")
CLIP_VS_INCEPTION = Assumption(
    "CLIP_VS_INCEPTION", 0.5, 2.0,
    "CLIP ViT-B/32 needs about 4.4 GFLOPs per 224² image against about 5.7 for Inception at 299²; "
    "attention runs less efficiently than convolutions, so 0.5–2× Inception's measured time")
BINARY_KEPT_COLUMNS = Assumption(
    "BINARY_KEPT_COLUMNS", 200, NUM_LOGITS,
    f"a Top-1 or middle-1 class histogram keeps the classes present in both sets: at most all {NUM_LOGITS}, "
    "assumed at least 200 for the paper's 50,000 reals of faces (fixed per-step overheads make small "
    "widths cost more than N·d·k says)")
EVAL_DRAW_VS_FRECHET = Assumption(
    "EVAL_DRAW_VS_FRECHET", 1.0, 3.0,
    "one evaluation draw is the covariance of the drawn pool3 features, its FID against the prepared "
    "reals, a CLIP-FID and a KID, on the CPU; on a GPU host's cores assumed to take 1–3× one "
    "2048-d Fréchet distance as bench_frechet measured it on 2 cores")
ASSUMPTIONS = (SG2ADA_1024_SLOWDOWN, CLIP_VS_INCEPTION, BINARY_KEPT_COLUMNS, EVAL_DRAW_VS_FRECHET)
# What a row is based on, from surest to least sure: a row is as sure as its least sure cost.
SOURCES = ("measured", "scaled", "assumed")


# --- the records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One recorded number and the record file it came from."""

    value: float
    record: str
    gpu: str | None = None


class Records:
    """The measured costs in a records folder (``benchmarks/records`` unless a test passes another).

    GPU checks merge as the README's gpu-check block shows them: a later record (by file name)
    replaces each section it re-ran.
    """

    def __init__(self, folder: str | Path = RECORDS) -> None:
        self.folder = Path(folder)
        sections: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(self.folder.glob("gpu_check_*.json")):
            record = json.loads(path.read_text())
            fresh: dict[str, list[dict[str, Any]]] = {}
            for row in record["rows"]:
                if row["metric"] != "section time":
                    fresh.setdefault(row["section"], []).append(
                        {**row, "record": path.name, "gpu": record["environment"].get("gpu")})
            sections.update(fresh)
        self._gpu = {(row["section"], row["metric"]): row for rows in sections.values() for row in rows}

    def gpu(self, section: str, metric: str) -> Measurement:
        """The GPU check's value of SECTION / METRIC; one line naming what to run when it is missing."""
        row = self._gpu.get((section, metric))
        if row is None or not isinstance(row["value"], (int, float)):
            raise FidlensError(f"{self.folder}: no GPU check records '{section}: {metric}' "
                               "(run benchmarks/gpu_check.py on a GPU and keep its JSON there)")
        return Measurement(float(row["value"]), row["record"], row["gpu"])

    def gpu_metrics(self, section: str) -> list[str]:
        return [metric for (sec, metric) in self._gpu if sec == section]

    def bench_value(self, name: str, pattern: str) -> Measurement:
        """The first number matched by PATTERN (one group) in what benchmark NAME printed."""
        path = self.folder / f"{name}.json"
        if not path.is_file():
            raise FidlensError(f"{path} is missing (python benchmarks/record.py benchmarks/{name}.py)")
        for line in json.loads(path.read_text())["output"]:
            match = re.search(pattern, line)
            if match:
                return Measurement(float(match.group(1)), path.name)
        raise FidlensError(f"{path}: no printed line matches {pattern!r}")

    def gpus(self) -> list[str]:
        return sorted({row["gpu"] for row in self._gpu.values() if row.get("gpu")})


# --- costs and rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """Seconds per unit of work (a low and a high end), how the table shows it and what it rests on."""

    low_s: float
    high_s: float
    text: str
    source: str
    basis: tuple[str, ...]  # record files and constant names, in order of first use


def _measured(seconds: float, text: str, record: str) -> Cost:
    return Cost(seconds, seconds, text, "measured", (record,))


def _rate(value: float, lo: float = 1.0, hi: float = 1.0) -> str:
    """VALUE img/s slowed down by a factor LO–HI (a range when they differ)."""
    return f"{value / lo:,.1f} img/s" if lo == hi else f"{value / hi:,.1f}–{value / lo:,.1f} img/s"


@dataclass(frozen=True)
class Row:
    """One part of the paper config: what it does, at what cost, on what basis, in how many GPU hours."""

    group: str  # the study it belongs to (the summary's parts)
    part: str
    work: str
    cost: str
    source: str
    basis: tuple[str, ...]
    low: float
    high: float

    @property
    def hours(self) -> float:
        """The row's estimate: the middle of its range (its only value when measured)."""
        return (self.low + self.high) / 2


def _row(group: str, part: str, work: str, terms: Iterable[tuple[float, Cost]], cost_text: str | None = None) -> Row:
    """A row whose hours are the sum of units × seconds-per-unit over TERMS."""
    terms = list(terms)
    low = sum(units * cost.low_s for units, cost in terms) / 3600
    high = sum(units * cost.high_s for units, cost in terms) / 3600
    source = max((cost.source for _, cost in terms), key=SOURCES.index)
    basis = tuple(dict.fromkeys(item for _, cost in terms for item in cost.basis))
    text = cost_text or " + ".join(dict.fromkeys(cost.text for _, cost in terms))
    return Row(group, part, work, text, source, basis, low, high)


@dataclass(frozen=True)
class Estimate:
    rows: tuple[Row, ...]
    gpus: tuple[str, ...]
    not_counted: str

    @property
    def hours(self) -> float:
        return sum(row.hours for row in self.rows)

    @property
    def low(self) -> float:
        return sum(row.low for row in self.rows)

    @property
    def high(self) -> float:
        return sum(row.high for row in self.rows)


class _Costs:
    """Per-unit costs from the records, and from the assumptions where nothing is measured."""

    def __init__(self, records: Records, batch_size: int) -> None:
        self.records = records
        self.batch_size = batch_size

    def generation(self, network: str) -> tuple[Cost, str]:
        """Seconds per generated image of NETWORK, and how the work column names the images."""
        name = Path(network).name
        if name not in NETWORK_KINDS:
            raise FidlensError(f"{network}: its architecture is unknown to the estimate (add it to NETWORK_KINDS)")
        arch, res = NETWORK_KINDS[name]
        label = f"{arch} {res}²"
        metric = f"{label} on cuda"
        if metric in self.records.gpu_metrics("generators"):
            m = self.records.gpu("generators", metric)
            return _measured(1 / m.value, _rate(m.value), m.record), label
        if (arch, res) == ("StyleGAN2-ADA", 1024):
            m = self.records.gpu("generators", "StyleGAN2 256² on cuda")
            a = SG2ADA_1024_SLOWDOWN
            return Cost(a.low / m.value, a.high / m.value, _rate(m.value, a.low, a.high), "assumed",
                        (m.record, a.name)), label
        raise FidlensError(f"no GPU check measures {label} generation and no assumption covers it")

    def inception(self) -> Cost:
        batches = [int(m.group(1)) for metric in self.records.gpu_metrics("features")
                   if (m := re.fullmatch(r"fidlens batch (\d+)", metric))]
        if not batches:
            raise FidlensError(f"{self.records.folder}: no GPU check measures Inception (features: fidlens batch N)")
        batch = min(batches, key=lambda b: (abs(b - self.batch_size), b))  # the config's batch, else the nearest
        m = self.records.gpu("features", f"fidlens batch {batch}")
        return _measured(1 / m.value, f"{m.value:,.1f} img/s (batch {batch})", m.record)

    def clip(self) -> Cost:
        base, a = self.inception(), CLIP_VS_INCEPTION
        return Cost(base.low_s * a.low, base.high_s * a.high,
                    f"{1 / (base.high_s * a.high):,.0f}–{1 / (base.low_s * a.low):,.0f} img/s", "assumed",
                    (*base.basis, a.name))

    def heatmap(self) -> tuple[Cost, Cost]:
        """(seconds per explained image, seconds of one job's set-up)."""
        per = next(metric for metric in [*self.records.gpu_metrics("heatmap"), "per heatmap"]
                   if metric.startswith("per heatmap"))
        setup = next(metric for metric in [*self.records.gpu_metrics("heatmap"), "setup"] if metric.startswith("setup"))
        p, s = self.records.gpu("heatmap", per), self.records.gpu("heatmap", setup)
        return (_measured(p.value, f"{p.value:g} s/heatmap", p.record),
                _measured(s.value, f"{s.value:g} s set-up per job", s.record))

    def step(self, pool: int, mode: Mode, reals: int) -> Cost:
        """Seconds per optimisation step over POOL candidates in MODE's feature space.

        The step costs O(N·d·k) (``fidlens.studies.resampling.optimizer``: three chunked passes,
        k the rank of the reals' covariance, ≤ min(d, reals - 1)); the GPU check measured it with
        a full-rank reference (k = d).
        """
        sizes = {metric: match for metric in self.records.gpu_metrics("resampling")
                 if (match := re.fullmatch(r"per iteration, ([\d,]+) x (\d+)", metric))}
        metric = next(iter(sizes), "per iteration, N x d")
        m = self.records.gpu("resampling", metric)
        n0, d0 = (int(x.replace(",", "")) for x in sizes[metric].groups())
        if mode.name in BINARY_MODES:
            widths, source, basis = (BINARY_KEPT_COLUMNS.low, BINARY_KEPT_COLUMNS.high), "assumed", \
                (m.record, BINARY_KEPT_COLUMNS.name)
        else:
            d = POOL3_DIM if mode.name == "pre_logits" else NUM_LOGITS
            widths, source, basis = (d, d), "measured", (m.record,)
        low, high = (m.value * pool * d * min(d, reals - 1) / (n0 * d0 * d0) for d in widths)
        if source == "measured" and (pool, widths[0], min(widths[0], reals - 1)) != (n0, d0, d0):
            source = "scaled"
        text = f"{low:.3g} s/step" if low == high else f"{low:.3g}–{high:.3g} s/step"
        return Cost(low, high, text, source, basis)

    def evaluation_draw(self) -> Cost:
        m = self.records.bench_value("bench_frechet", r"^\s*fidlens\s*:\s*([\d.]+) s")
        a = EVAL_DRAW_VS_FRECHET
        return Cost(m.value * a.low, m.value * a.high, f"{m.value * a.low:.3g}–{m.value * a.high:.3g} s/draw",
                    "assumed", (m.record, a.name))


# --- the plan's work ---------------------------------------------------------------------------


def dataset_images(plan: Plan, name: str) -> int:
    """Images of dataset NAME as the config states them (max_images, expected_images): never counted on disk,
    so the estimate is the same on every machine."""
    spec = plan.datasets[name]
    given = [n for n in (spec.get("max_images"), spec.get("expected_images")) if n]
    if not given:
        raise FidlensError(f"config datasets.{name}: give expected_images (or max_images) for the estimate")
    return min(given)


def evaluations(iterations: int, eval_every: int) -> int:
    """Evaluations of one resampling mode: the uniform baseline, iteration 1, every EVAL_EVERY-th, the last
    (the loop of ``fidlens.studies.resampling.run``)."""
    steps = {1, iterations} | set(range(eval_every, iterations + 1, eval_every))
    return 1 + len(steps)


def _heatmap_seeds(plan: Plan, generator: str) -> list[int]:
    """The distinct seeds the heatmap job explains (a seed shown alone and in a grid is explained once)."""
    return sorted({seed for figure in plan.heatmap_figures(generator) for seed in figure["seeds"]})


def estimate(plan: Plan, records: Records) -> Estimate:
    """Every GPU part of PLAN, costed from RECORDS."""
    costs = _Costs(records, int(plan.config["batch_size"]))
    explain, setup = costs.heatmap()
    rows: list[Row] = []
    inception_images: dict[str, int] = {}
    clip_images: dict[str, int] = {}

    for generator, study in plan.heatmaps.items():
        gen, label = costs.generation(plan.generator_network(generator))
        n = int(study["num_generated"])
        rows.append(_row("heatmaps", f"heatmaps {generator}: generated set", f"{n:,} {label} images", [(n, gen)]))
        inception_images[f"heatmaps {generator}"] = n
        seeds = _heatmap_seeds(plan, generator)
        rows.append(_row("heatmaps", f"heatmaps {generator}: figures",
                         f"{len(seeds)} distinct seeds generated and explained, 1 job",
                         [(1, setup), (len(seeds), explain), (len(seeds), gen)]))

    pools: dict[tuple[str, int, int], None] = {}  # each generated pool once, however many runs read it
    for run, spec in plan.resampling.items():
        reals = dataset_images(plan, spec["reals"])
        generated = spec.get("generator")
        if generated:
            key = (generated["name"], int(generated["num_images"]), int(generated["latent_seed"]))
            pools.setdefault(key)
            pool = key[1]
        else:
            pool = sum(dataset_images(plan, name) for name in spec["pool"])
        if spec.get("clip_weights"):
            clip_images[f"reals {spec['reals']}"] = reals
            if generated:
                clip_images[f"pool {key[0]}"] = pool
            else:
                clip_images.update({f"pool {name}": dataset_images(plan, name) for name in spec["pool"]})
        iterations = int(spec["iterations"])
        for tag in spec["modes"]:
            rows.append(_row("resampling", f"resampling {run}: optimisation, {tag}",
                             f"{iterations:,} steps over {pool:,} candidates",
                             [(iterations, costs.step(pool, Mode.parse(tag), reals))]))
        count = evaluations(iterations, int(spec["eval_every"]))
        draws = count * int(spec["eval_repeats"]) * len(spec["modes"])
        rows.append(_row("resampling", f"resampling {run}: evaluations",
                         f"{count} per mode × {spec['eval_repeats']} draws of {spec['eval_samples']:,} × "
                         f"{len(spec['modes'])} modes = {draws:,} draws (FID, CLIP-FID, KID)",
                         [(draws, costs.evaluation_draw())]))
    for name, n, z in pools:
        gen, label = costs.generation(plan.generator_network(name))
        rows.append(_row("resampling", f"resampling pool {name}",
                         f"{n:,} {label} images, generated once (latent seed {z})", [(n, gen)]))
        inception_images[f"pool {name}"] = n

    map_terms: list[tuple[float, Cost]] = []
    map_pairs: dict[str, int] = {}
    figure4 = 0
    for model, study in plan.pairs.items():
        gen, label = costs.generation(plan.pairs_generator_network(model))
        n = int(study["num_images"])
        selected = selection_size(n, float(study["fraction"]))
        refill = selected if study["delete_mode"] == "refill" else 0
        images = n + selected + refill
        extra = f" + {refill:,} refills" if refill else ""
        rows.append(_row("pairs study", f"pairs study {model}",
                         f"{images:,} {label} images ({n:,} + {selected:,} replacements{extra})", [(images, gen)]))
        inception_images[f"pairs {model}"] = images
        pairs = (study.get("published") or {}).get("pairs")
        if study["maps"] and pairs:  # the pairs files are placed by hand: Table 1's count stands in
            map_terms += [(1, setup), (2 * pairs, explain), (2 * pairs, gen)]
            map_pairs[model] = int(pairs)
        if study.get("figure4"):
            map_terms.append((2 * int(study["figure4"]), gen))
            figure4 += 2 * int(study["figure4"])
    if map_terms:
        fig = f"; Fig. 4: {figure4} images" if figure4 else ""
        rows.append(_row("pairs study", "pair maps and Fig. 4",
                         f"{sum(map_pairs.values())} pairs (Table 1's counts) × 2 images, {len(map_pairs)} jobs{fig}",
                         map_terms, cost_text=f"generation as above + {explain.text} + {setup.text}"))

    reals = {name: dataset_images(plan, name) for name in plan.datasets}
    inception_images.update({f"reals {name}": n for name, n in reals.items()})
    total = sum(inception_images.values())
    named = ", ".join(f"{name} {n:,}" for name, n in reals.items())
    rows.append(_row("features", "Inception features",
                     f"{total:,} images: every generated set and study above, and the reals ({named})",
                     [(total, costs.inception())]))
    if clip_images:
        total_clip = sum(clip_images.values())
        rows.append(_row("features", "CLIP features",
                         f"{total_clip:,} images: " + ", ".join(f"{k} {v:,}" for k, v in clip_images.items()),
                         [(total_clip, costs.clip())]))

    return Estimate(tuple(rows), tuple(records.gpus()), _not_counted(plan, records, reals))


def _not_counted(plan: Plan, records: Records, reals: Mapping[str, int]) -> str:
    """The CPU-side work the GPU hours leave out, with the measured decoding rate where one is recorded."""
    sources = sum(reals.get(name, 0) for zip_spec in plan.config.get("zips", {}).values()
                  for name, spec in plan.datasets.items() if spec["path"] == zip_spec["source"])
    reads = sum(reals.values()) + sources
    decode = f"decoding the reals' PNGs ({reads:,} reads: every dataset, and the sources of the ZIPs the config builds"
    try:
        m = records.bench_value("bench_features", r"decode, main process only\s*:\s*([\d.]+) images/s")
        cores = json.loads((records.folder / m.record).read_text())["cores"]
        decode += (f"; 1024² PNGs decode at {m.value:g} img/s on {cores} cores, `{m.record}`, so at most "
                   f"{_fmt(reads / m.value / 3600)} h on {cores} cores, less with more)")
    except FidlensError:
        decode += ")"
    return (f"Not counted (CPU work beside the GPU): {decode}, the pairs study's face detector (OpenCV, on the CPU "
            "inside the study's loop; not measured), loading the networks once per job and per shard, "
            "downloads, and picking the pairs by hand.")


# --- rendering ---------------------------------------------------------------------------------


def _fmt(hours: float) -> str:
    if hours >= 1:
        return f"{hours:.1f}"
    return f"{hours:.2f}" if hours >= 0.1 else f"{hours:.2g}"


def _hours(low: float, high: float) -> str:
    """One number when measured; the middle and the range otherwise."""
    if low == high:
        return _fmt(low)
    return f"{_fmt((low + high) / 2)} ({_fmt(low)}–{_fmt(high)})"


def _source(row: Row) -> str:
    return f"{row.source}: " + ", ".join(f"`{item}`" for item in row.basis)


def _by_group(rows: Iterable[Row]) -> dict[str, float]:
    groups: dict[str, float] = {}
    for row in rows:
        groups[row.group] = groups.get(row.group, 0.0) + row.hours
    return dict(sorted(groups.items(), key=lambda item: -item[1]))


def render(plan: Plan | None = None, records: Records | None = None) -> str:
    """The README block: the total, one table row per part, the assumptions and what is left out."""
    plan = plan if plan is not None else load_plan(PAPER_CONFIG)
    records = records if records is not None else Records()
    try:
        est = estimate(plan, records)
    except FidlensError as exc:
        return f"The paper config's GPU hours cannot be estimated yet: {exc}.\n"
    gpu = " and ".join(est.gpus) or "the recorded GPU"
    parts = ", ".join(f"{group} {_fmt(hours)} h" for group, hours in _by_group(est.rows).items())
    lines = [f"About **{est.hours:.0f} GPU-hours on one {gpu}** (range {est.low:.0f}–{est.high:.0f} h): {parts}. "
             f"Computed by `python -m fidlens.workflow.paper_estimate` from the plan of `config/{plan.run}.yaml` "
             "and the costs recorded in `benchmarks/records/`. Each row's source says how its cost was "
             "obtained: measured (as recorded), scaled (a measured cost carried to other sizes by a stated "
             "rule) or assumed (a named constant, listed below the table); a row with a range counts its "
             "middle, and the total's range adds up the rows' ends.",
             "", "| part | work | per-unit cost | source | hours |", "|---|---|---|---|---|"]
    lines += [f"| {r.part} | {r.work} | {r.cost} | {_source(r)} | {_hours(r.low, r.high)} |" for r in est.rows]
    lines.append(f"| **total** | | | | **{_hours(est.low, est.high)}** |")
    used = {item for row in est.rows for item in row.basis}
    lines += ["", "What the scaled and assumed rows rest on (`src/fidlens/workflow/paper_estimate.py`):", ""]
    if any(row.source != "measured" and ": optimisation" in row.part for row in est.rows):
        lines.append("- optimisation steps scale as N·d·k (N candidates, d features, k ≤ min(d, reals − 1) the rank "
                     "of the reals' covariance): the GPU check measured one step at full rank.")
    lines += [f"- `{a.name}` = {a.low:g}–{a.high:g}: {a.why}." for a in ASSUMPTIONS if a.name in used]
    lines += ["", "Generation was measured one image per call, with randomly initialised networks of the real "
              "architectures; the jobs generate in batches, so the measured generation rows are upper bounds. "
              f"{est.not_counted} On another GPU, rerun `benchmarks/gpu_check.py` and keep its JSON in "
              "`benchmarks/records/`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
