"""The sharded plan of a config as a short table: jobs per set, per-job runtime and memory estimates.

Why: before a 50,000-image run goes to a cluster, the user should see how many GPU jobs it
becomes and what each one asks for. Runtimes are S / throughput, throughput being the slowest of
decoding and the network, from measured per-image costs in benchmarks/records/*.json; each
estimate says which record it rests on and whether that was measured on a GPU or a CPU.
A missing record leaves its column as "unmeasured" rather than a guess.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fidlens.workflow.targets import Plan

__all__ = ["Costs", "read_costs", "shard_plan_rows", "format_shard_plan"]

FEATURE_DIM, LOGITS_DIM = 2048, 1008  # Inception pool3 and NVIDIA's logits: what a shard file holds per image
_JOB_OVERHEAD_S = 60.0  # load the detector and generator, open the set: a measured demo job's order of magnitude
_BASE_MEM_GB = 3.0  # torch, the network and a batch in flight, on the host


@dataclass(frozen=True)
class Cost:
    """One measured throughput (images per second) and where it comes from."""

    per_s: float
    basis: str


@dataclass(frozen=True)
class Costs:
    gpu_network: Cost | None = None      # detector on the GPU (gpu_check)
    cpu_network: Cost | None = None      # detector on the CPU (bench_features)
    decode: Cost | None = None           # one process decoding 1024² PNGs (bench_features)
    generators: dict[str, Cost] | None = None  # StyleGAN family -> generation on the GPU (gpu_check)


def _bench_line(output: list[str], label: str) -> float | None:
    for line in output:
        if line.strip().startswith(label):
            found = re.search(r":\s*([0-9.]+)\s*images/s", line)
            if found:
                return float(found.group(1))
    return None


def read_costs(records: str | os.PathLike) -> Costs:
    """The per-image costs in a benchmarks/records folder (absent files or rows: None)."""
    folder = Path(records)
    cpu_network = decode = gpu_network = None
    generators: dict[str, Cost] = {}
    bench = folder / "bench_features.json"
    if bench.is_file():
        record = json.loads(bench.read_text())
        where = f"CPU-measured: {record.get('cpu', 'CPU')}, {record.get('cores', '?')} cores, {record.get('date', '')}"
        value = _bench_line(record.get("output", []), "fidlens FidInceptionV3")
        cpu_network = Cost(value, f"detector, {where}") if value else None
        value = _bench_line(record.get("output", []), "decode, main process only")
        decode = Cost(value, f"1024² PNG decode per process, {where}") if value else None
    for path in sorted(folder.glob("gpu_check*.json")):
        record = json.loads(path.read_text())
        env = record.get("environment", {})
        where = f"{env.get('gpu', 'GPU')}, measured {str(env.get('date', ''))[:10]}"
        for row in record.get("rows", []):
            metric, value = str(row.get("metric", "")), row.get("value")
            if not isinstance(value, (int, float)) or row.get("unit") != "img/s":
                continue
            if row.get("section") == "features" and metric == "fidlens batch 64":
                gpu_network = Cost(float(value), f"detector batch 64, {where}")
            for family, label in (("stylegan2", "StyleGAN2"), ("stylegan3-t", "StyleGAN3-T"),
                                  ("stylegan3-r", "StyleGAN3-R")):
                if row.get("section") == "generators" and metric.startswith(label + " "):
                    generators[family] = Cost(float(value), f"{metric}, {where}")
    return Costs(gpu_network, cpu_network, decode, generators)


def _family(network: str) -> str:
    name = Path(network).name.lower()
    if "stylegan3-r" in name or "sg3r" in name:
        return "stylegan3-r"
    if "stylegan3" in name or "sg3" in name:
        return "stylegan3-t"
    return "stylegan2"


def _minutes(images: int, *rates: Cost | None) -> float | None:
    """Wall minutes of a job: images at the slowest of RATES, plus start-up; None when a rate is unmeasured."""
    if any(rate is None for rate in rates):
        return None
    per_s = min(rate.per_s for rate in rates)
    return (_JOB_OVERHEAD_S + images / per_s) / 60.0


def _scaled(cost: Cost | None, workers: int) -> Cost | None:
    if cost is None:
        return None
    return Cost(cost.per_s * max(1, workers), f"{cost.basis}; × {max(1, workers)} decode process(es)")


def shard_plan_rows(plan: Plan, costs: Costs) -> list[dict[str, Any]]:
    """One row per job kind of every sharded set: jobs, images per job, minutes and host memory per job."""
    rows = []
    workers = int(plan.config.get("workers") or 0)
    for entry in plan.shard_jobs():
        per_job = min(entry["shard_size"], entry["num_images"])
        shard_mem = _BASE_MEM_GB + 2 * per_job * (FEATURE_DIM + LOGITS_DIM) * 4 / 1e9
        merge_mem = 1.0 + 2 * entry["num_images"] * (FEATURE_DIM + LOGITS_DIM) * 4 / 1e9 + 3 * FEATURE_DIM**2 * 8 / 1e9
        if entry["kind"] == "dataset":
            decode = _scaled(costs.decode, workers)
            gpu, cpu = _minutes(per_job, costs.gpu_network, decode), _minutes(per_job, costs.cpu_network, decode)
            rule, basis = "feature_shard", [costs.gpu_network, costs.cpu_network, decode]
        else:
            generate = (costs.generators or {}).get(_family(plan.generator_network(entry["generator"])))
            gpu, cpu = _minutes(per_job, costs.gpu_network, generate), None
            rule, basis = "generated_shard", [costs.gpu_network, generate]
        rows.append({"set": entry["name"], "rule": rule, "jobs": entry["shards"], "images_per_job": per_job,
                     "gpu_minutes": gpu, "cpu_minutes": cpu, "mem_gb": shard_mem,
                     "basis": [cost.basis for cost in basis if cost is not None]})
        rows.append({"set": entry["name"], "rule": "merge_" + ("feature" if entry["kind"] == "dataset" else "generated")
                     + "_shards", "jobs": 1, "images_per_job": entry["num_images"], "gpu_minutes": None,
                     "cpu_minutes": None, "mem_gb": merge_mem, "basis": []})
    return rows


def format_shard_plan(plan: Plan, costs: Costs) -> str:
    """The rows as a plain-text table with its footnotes (what the dry run of a sharded config prints)."""
    rows = shard_plan_rows(plan, costs)
    if not rows:
        return "sharded plan: no set is sharded (config shard_size is null)"

    def minutes(value: float | None) -> str:
        return "unmeasured" if value is None else f"{value:.1f}"

    lines = ["sharded plan (estimates; the merge is a CPU job that reads every shard once):",
             f"{'set':<28} {'rule':<22} {'jobs':>5} {'images/job':>10} {'min/job GPU':>12} {'min/job CPU':>12} "
             f"{'host GB/job':>11}"]
    for row in rows:
        gpu = "-" if row["rule"].startswith("merge") else minutes(row["gpu_minutes"])
        cpu = "-" if row["rule"].startswith("merge") else minutes(row["cpu_minutes"])
        lines.append(f"{row['set']:<28} {row['rule']:<22} {row['jobs']:>5} {row['images_per_job']:>10} {gpu:>12} "
                     f"{cpu:>12} {row['mem_gb']:>11.1f}")
    bases = sorted({basis for row in rows for basis in row["basis"]})
    lines.append(f"runtime = {_JOB_OVERHEAD_S:.0f} s start-up + images / slowest measured rate of:")
    lines += [f"  - {basis}" for basis in bases]
    lines.append("  decode is measured on 1024² PNGs (smaller images decode faster); generation was timed on a few "
                 "seeds, so large batches run faster; set SLURM runtimes with margin (profiles/slurm).")
    return "\n".join(lines)
