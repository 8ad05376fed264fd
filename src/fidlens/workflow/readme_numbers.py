"""The numbers the README quotes, drawn from a demo run and the benchmark records, never typed by hand.

The README holds marked blocks, ``<!-- numbers:NAME -->`` … ``<!-- /numbers:NAME -->``, whose text
is rendered from two kinds of checked-in records:

- ``docs/demo_numbers.json``: what a demo run produced (FID table, resampling summary, Table 2,
  pair maps, the automatic pairs rule, the run's timing). ``collect`` writes it from the demo's
  results folder (``results/demo``); ``tests/test_demo_outputs.py`` checks a fresh run's results against it
  (``make demo && make check-demo``; CI does this), so the README cannot quote numbers the
  code no longer produces.
- ``benchmarks/records/gpu_check_*.json``: what ``benchmarks/gpu_check.py`` printed on a GPU;
  ``benchmarks/records/bench_*.json``: what a CPU benchmark printed (``benchmarks/record.py``).
  The ``paper-gpu-hours`` block multiplies those costs by the work of ``config/paper.yaml``'s plan
  (``fidlens.workflow.paper_estimate``).

``python -m fidlens.workflow.readme_numbers collect results/demo`` then ``... render`` (``make readme-numbers``)
rewrites the blocks; ``tests/test_docs.py`` fails when a block differs from its rendering.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from fidlens.core.atomic import atomic_path
from fidlens.workflow import paper_estimate
from fidlens.workflow.targets import demo_plan

REPO = Path(__file__).resolve().parents[3]
# Where the demo writes (config/demo.yaml's run): the paths the README's sentences name.
DEMO_RESULTS = demo_plan().results
SNAPSHOT = REPO / "docs" / "demo_numbers.json"
README = REPO / "README.md"
GPU_RECORDS = REPO / "benchmarks" / "records"
_BLOCK = re.compile(r"<!-- numbers:(?P<name>[a-z0-9-]+) -->\n(?P<body>.*?)<!-- /numbers:(?P=name) -->", re.S)


# --- collecting a demo run ---------------------------------------------------------------------


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> float | None:
    return None if text in ("", None) else float(text)


def _fid_table(results: Path) -> list[dict[str, Any]]:
    rows = []
    for row in _csv_rows(results / "tables" / "fid_demo.csv"):
        rows.append({"set": row["set"], "distortion": row["distortion"], "level": int(row["level"]),
                     "strength": _number(row["strength"]), "fid": float(row["fid"]),
                     "kid_x1000": float(row["kid_x1000"]), "kid_std_x1000": float(row["kid_std_x1000"]),
                     "n_reference": int(row["n_reference"]), "n_images": int(row["n_images"])})
    return rows


def _resampling(results: Path, run: str = "demo", mode: str = "pre_logits") -> dict[str, Any]:
    summary = json.loads((results / "resampling" / run / mode / "summary.json").read_text())
    baseline, best, last = summary["baseline"], summary["best"], summary["last"]
    masses = {key[5:]: [baseline[key], last[key]] for key in baseline if key.startswith("mass:")}
    return {"run": run, "mode": mode, "iterations": summary["iterations"], "candidates": summary["candidates"],
            "reals": summary["reals"], "baseline_fid": baseline["fid"], "best_fid": best["fid"],
            "best_iteration": best["iteration"], "baseline_kid_x1000": baseline.get("kid_x1000"),
            "best_kid_x1000": best.get("kid_x1000"), "mass_before_after": masses,
            "pool_floor": summary.get("pool_floor"), "control": _control(summary)}


def _control(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The control space's FID at the baseline and at the best-FID iteration (None without a control)."""
    space = summary.get("control_detector")
    column = (space or {}).get("column")
    if not column or summary["baseline"].get(column) is None:
        return None
    return {"label": space["label"], "baseline": summary["baseline"][column], "best": summary["best"].get(column)}


def _pairs(results: Path, model: str = "demo") -> dict[str, Any]:
    row = next(r for r in _csv_rows(results / "tables" / "pairs_table2.csv") if r["model"] == model)
    table = {key: _number(value) if key not in ("model", "generator", "delete_mode", "covariance") else value
             for key, value in row.items() if not key.startswith("published_")}
    maps = _csv_rows(results / "pairs" / model / "maps.csv")
    pairs_file = yaml.safe_load((results / "pairs" / model / "pairs.yaml").read_text())
    rule = str(pairs_file.get("rule", ""))
    faces = re.search(r"(\d+) of the (\d+) seeds show a face", rule)
    return {"table2": table,
            "maps": {"pairs": len(maps), "good_preferred": sum(float(m["swap_change"]) < 0 for m in maps)},
            "bad_seeds": [str(p["bad"]) for p in pairs_file.get("pairs", [])],
            "candidate_faces": [int(faces.group(1)), int(faces.group(2))] if faces else None,
            "rule": rule}


def _beyond(results: Path, attributed: str = "comparison", model: str = "demo") -> dict[str, Any]:
    """Attribution of one image set, and the pairs study's control space and selected images' ΔFID."""
    attribution = json.loads((results / "attribution" / attributed / "attribution.json").read_text())
    ranking = _csv_rows(results / "attribution" / attributed / "ranking.csv")
    first, last = ranking[0], ranking[-1]
    out: dict[str, Any] = {
        "attribution": {"set": attributed, "fid": attribution["fid"], "num_images": attribution["num_images"],
                        "most_harmful": [first["name"], float(first["delta_fid"])],
                        "most_helpful": [last["name"], float(last["delta_fid"])]}}
    row = json.loads((results / "pairs" / model / "table2_row.json").read_text())
    if row.get("selected_delta_fid"):
        ranks = [int(item["rank"]) for item in row["selected_delta_fid"]]
        out["pairs_selected"] = {"count": len(ranks), "rank_min": min(ranks), "rank_max": max(ranks),
                                 "among_most_disliked": sum(rank <= len(ranks) for rank in ranks),
                                 "of": int(row["num_images"]), "mean_delta_fid": row["selected_delta_fid_mean"],
                                 "fid": row["FID"], "fid_replace": row["FID_Replace"]}
    control = results / "pairs" / model / "control_fids.csv"
    if control.is_file():
        rows = {r["set"]: r for r in _csv_rows(control)}
        out["pairs_control"] = {"detector": rows["FID"]["control_detector"], "fid": float(rows["FID"]["fid_control"]),
                                "fid_replace": float(rows["FID_Replace"]["fid_control"])}
    return out


def collect(results: str | Path) -> dict[str, Any]:
    """Every number the README quotes from one demo run under RESULTS."""
    results = Path(results)
    parts = {"fid_table": (_fid_table, results / "tables" / "fid_demo.csv"),
             "resampling": (_resampling, results / "resampling" / "demo" / "pre_logits" / "summary.json"),
             "pairs": (_pairs, results / "tables" / "pairs_table2.csv"),
             "beyond": (_beyond, results / "attribution" / "comparison" / "attribution.json")}
    # a part is recorded only when its run finished; the README says which are missing
    numbers: dict[str, Any] = {name: read(results) for name, (read, marker) in parts.items() if marker.is_file()}
    timing = results / "demo_run.json"
    if timing.is_file():
        numbers["timing"] = json.loads(timing.read_text())
    return numbers


def write_snapshot(numbers: dict[str, Any], path: Path = SNAPSHOT) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(numbers, indent=2, allow_nan=False, ensure_ascii=False) + "\n")


# --- rendering ---------------------------------------------------------------------------------


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60):d} s"


def _not_recorded(part: str) -> str:
    return f"(The {part} numbers are not recorded yet: run `make demo`, then `make readme-numbers`.)\n"


def render_timing(numbers: dict[str, Any]) -> str:
    t = numbers.get("timing")
    if not t:
        return "`make demo`'s duration has not been recorded yet (run `make demo`, then `make readme-numbers`).\n"
    headline = [v for v in t["headline_s"].values() if v is not None]
    first = f" The headline table and figure were written {_minutes(max(headline))} after the start." if headline else ""
    return (f"`make demo` ran {t['jobs']} jobs in **{_minutes(t['wall_s'])}** on {t['cores']} CPU cores "
            f"({t['cpu']}, {t['date']}, measured by `make demo` itself into `{DEMO_RESULTS}/demo_run.json`).{first}\n")


def render_fid_table(numbers: dict[str, Any]) -> str:
    if "fid_table" not in numbers:
        return _not_recorded("fid table")
    rows = numbers["fid_table"]
    clean = next(r["fid"] for r in rows if r["distortion"] == "none")
    kinds: dict[str, dict[int, float]] = {}
    for r in rows:
        if r["distortion"] != "none":
            kinds.setdefault(r["distortion"], {})[r["level"]] = r["fid"]
    levels = sorted({lv for k in kinds.values() for lv in k})
    lines = ["| strength level | 0 (clean) | " + " | ".join(str(lv) for lv in levels) + " |",
             "|---|---|" + "---|" * len(levels)]
    for kind, by_level in kinds.items():
        lines.append(f"| {kind} | {clean:.1f} | " + " | ".join(f"{by_level[lv]:.1f}" for lv in levels) + " |")
    n = rows[0]
    return (f"FID of each comparison set ({n['n_images']} images) against the reference ({n['n_reference']} "
            f"images), `{DEMO_RESULTS}/tables/fid_demo.csv`:\n\n" + "\n".join(lines) + "\n")


def render_resampling(numbers: dict[str, Any]) -> str:
    if "resampling" not in numbers:
        return _not_recorded("resampling")
    r = numbers["resampling"]
    masses = r["mass_before_after"]
    clean = masses.get("comparison")
    mass = (f", and the share of sampling mass on the clean faces rises from **{clean[0]:.1%} to {clean[1]:.1%}**"
            if clean else "")
    kid = ""
    if r["baseline_kid_x1000"] is not None and r["best_kid_x1000"] is not None:
        kid = f", KID×1000 from {r['baseline_kid_x1000']:.1f} to {r['best_kid_x1000']:.1f}"
    floor = r.get("pool_floor")
    versus = ""
    if floor:
        side = "below" if r["best_fid"] < floor["fid"] else "above"
        versus = (f" The best draw ends {side} the FID of the pool's best whole set, `{floor['set']}` "
                  f"({floor['images']} images): {floor['fid']:.2f} (the dotted line in the curves).")
    control = r.get("control")
    second = ""
    if control and control["best"] is not None:
        second = (f" In the control space, {control['label']} goes from {control['baseline']:.2f} to "
                  f"{control['best']:.2f} at that iteration.")
    return (f"In {r['iterations']} iterations over {r['candidates']} candidates the FID of a resampled draw "
            f"falls from **{r['baseline_fid']:.2f} to {r['best_fid']:.2f}** (best at iteration "
            f"{r['best_iteration']}){kid}{mass} (`{DEMO_RESULTS}/resampling/{r['run']}/{r['mode']}/summary.json`)."
            f"{versus}{second}\n")


def render_pairs(numbers: dict[str, Any]) -> str:
    if "pairs" not in numbers:
        return _not_recorded("pairs")
    p = numbers["pairs"]
    t = p["table2"]
    faces = " / ".join(f"{100 * t[c]:.1f} %" for c in ("face_rate", "face_rate_Replace", "face_rate_Delete"))
    sel = f"{100 * t['face_rate_Sub_Bad']:.0f} % → {100 * t['face_rate_Sub_Good']:.0f} %"
    head = ("| N | n | FID | FID_Replace | FID_Delete | FID_Sub_Good | FID_Sub_Bad | faces: full / replace / delete "
            "| faces: selected → replaced |")
    row = (f"| {int(t['num_images'])} | {int(t['num_selected'])} | {t['FID']:.2f} | {t['FID_Replace']:.2f} | "
           f"{t['FID_Delete']:.2f} ({int(t['num_delete_set'])}) | {t['FID_Sub_Good']:.2f} | {t['FID_Sub_Bad']:.2f} "
           f"| {faces} | {sel} |")
    moved = abs(t["FID_Replace"] - t["FID"])
    maps = p["maps"]
    # The verdicts follow the recorded numbers, so a run where they turn cannot keep an old sentence.
    finds = "finds worse images" if t["face_rate_Sub_Bad"] < t["face_rate"] else "does not find worse images"
    fix = "helps" if t["face_rate_Sub_Good"] > t["face_rate_Sub_Bad"] else "does not help"
    return ("\n".join([head, "|" + "---|" * 9, row]) + "\n\n"
            f"The selection {finds} (the detector finds a face in {100 * t['face_rate_Sub_Bad']:.0f} % "
            f"of them against {100 * t['face_rate']:.0f} % overall) and the w-space fix {fix} "
            f"({100 * t['face_rate_Sub_Good']:.0f} %), while FID moves by {moved:.2f} on a value of {t['FID']:.0f}. "
            f"FID preferred the good image in {maps['good_preferred']} of the {maps['pairs']} swaps "
            f"(`{DEMO_RESULTS}/pairs/demo/maps.md`).\n")


def render_auto_pairs(numbers: dict[str, Any]) -> str:
    if "pairs" not in numbers:
        return _not_recorded("pairs")
    p = numbers["pairs"]
    faces = p["candidate_faces"]
    seen = f"The detector finds a face in {faces[0]} of the {faces[1]} candidate seeds. " if faces else ""
    return (f"{seen}The bad seeds are {', '.join(p['bad_seeds'])}. The rule as the run wrote it into "
            f"`{DEMO_RESULTS}/pairs/demo/pairs.yaml`: “{p['rule']}”.\n")


def render_beyond(numbers: dict[str, Any]) -> str:
    """Which images FID dislikes in the demo, and what the pairs study's control space and ranks say."""
    if "beyond" not in numbers:
        return _not_recorded("attribution")
    b = numbers["beyond"]
    a = b["attribution"]
    text = (f"In the ORL {a['set']} set ({a['num_images']} images, FID {a['fid']:.2f}), removing "
            f"`{a['most_harmful'][0]}` lowers FID the most (ΔFID {a['most_harmful'][1]:+.2f}) and removing "
            f"`{a['most_helpful'][0]}` raises it the most ({a['most_helpful'][1]:+.2f}) "
            f"(`{DEMO_RESULTS}/attribution/{a['set']}/ranking.csv`).")
    pairs = b.get("pairs_selected")
    if pairs:
        verb = "is" if pairs["among_most_disliked"] == 1 else "are"
        text += (f" Of the {pairs['count']} images the demo's pairs rule selects, {pairs['among_most_disliked']} "
                 f"{verb} among the {pairs['count']} that FID dislikes most: their leave-one-out ranks among the "
                 f"{pairs['of']} run from {pairs['rank_min']} to {pairs['rank_max']} (mean ΔFID "
                 f"{pairs['mean_delta_fid']:+.2f}).")
    control = b.get("pairs_control")
    if control and pairs:
        text += (f" Replacing them: FID {pairs['fid']:.2f} → {pairs['fid_replace']:.2f} in Inception space, "
                 f"{control['fid']:.3f} → {control['fid_replace']:.3f} in the control space ({control['detector']}).")
    return text + "\n"


def render_demo_setup(numbers: dict[str, Any]) -> str:
    """The sizes of the recorded run's sets, as the run counted them (not as the config promises)."""
    if "fid_table" not in numbers:
        return _not_recorded("demo set")
    rows = numbers["fid_table"]
    kinds = sorted({r["distortion"] for r in rows if r["distortion"] != "none"})
    parts = [f"In the recorded run the reference holds {rows[0]['n_reference']} images and each of the "
             f"{len(rows)} comparison sets (clean + {len(rows) - 1} disturbed: {', '.join(kinds)}) "
             f"{rows[0]['n_images']}"]
    if "resampling" in numbers:
        r = numbers["resampling"]
        parts.append(f"the resampling pool {r['candidates']} candidates against the reference")
    if "pairs" in numbers:
        t = numbers["pairs"]["table2"]
        parts.append(f"the pairs study {int(t['num_images'])} generated images, {int(t['num_selected'])} of them "
                     "selected")
    return "; ".join(parts) + ".\n"


BENCH_ORDER = ("bench_frechet", "bench_features", "bench_heatmap", "bench_resampling", "bench_attribution",
               "bench_bootstrap")


def render_benchmarks(_: dict[str, Any] | None = None) -> str:
    """Each benchmark's printed output as recorded by ``benchmarks/record.py`` (``make bench``)."""
    out = []
    missing = []
    for name in BENCH_ORDER:
        path = GPU_RECORDS / f"{name}.json"
        if not path.is_file():
            missing.append(f"`{name}.py`")
            continue
        r = json.loads(path.read_text())
        args = " " + " ".join(r["args"]) if r["args"] else ""
        out.append(f"`{r['script']}{args}` on {r['cores']} cores ({r['cpu']}, {r['date']}, torch {r['torch']}):\n\n"
                   "```\n" + "\n".join(r["output"]) + "\n```\n")
    if missing:
        out.append(f"Not recorded yet: {', '.join(missing)} (`python benchmarks/record.py benchmarks/NAME.py`).\n")
    return "\n".join(out)


def _gpu_rows() -> list[dict[str, Any]]:
    """Rows of every recorded GPU check; a later record (by name) replaces a section it re-ran."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(GPU_RECORDS.glob("gpu_check_*.json")):
        record = json.loads(path.read_text())
        env = record["environment"]
        fresh: dict[str, list[dict[str, Any]]] = {}
        for row in record["rows"]:
            if row["metric"] != "section time":
                fresh.setdefault(row["section"], []).append(
                    {**row, "gpu": env.get("gpu"), "date": env["date"][:10], "torch": env["torch"], "record": path.name})
        sections.update(fresh)
    return [row for rows in sections.values() for row in rows]


def render_gpu(_: dict[str, Any] | None = None) -> str:
    rows = _gpu_rows()
    if not rows:
        return "GPU figures: not yet measured (run `make gpu-check` on a machine with one CUDA GPU).\n"
    first = rows[0]
    lines = [f"Measured by `benchmarks/gpu_check.py` on one {first['gpu']} ({first['date']}, torch {first['torch']}; "
             f"records in `benchmarks/records/`):", "", "| section | metric | value | unit | note |", "|---|---|---|---|---|"]
    for r in rows:
        value = "" if r["value"] is None else r["value"]
        note = str(r.get("note") or "").replace("|", "/")
        lines.append(f"| {r['section']} | {r['metric']} | {value} | {r.get('unit') or ''} | {note} |")
    return "\n".join(lines) + "\n"


def render_paper_gpu_hours(_: dict[str, Any] | None = None) -> str:
    """The paper config's GPU hours: its plan's work times the recorded costs (`fidlens.workflow.paper_estimate`)."""
    return paper_estimate.render(records=paper_estimate.Records(GPU_RECORDS))


RENDERERS = {"demo-timing": render_timing, "demo-fid-table": render_fid_table,
             "demo-resampling": render_resampling, "demo-pairs": render_pairs,
             "demo-auto-pairs": render_auto_pairs, "demo-setup": render_demo_setup, "demo-beyond": render_beyond,
             "benchmarks": render_benchmarks, "gpu-check": render_gpu, "paper-gpu-hours": render_paper_gpu_hours}


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    return json.loads(path.read_text())


def rendered_blocks(numbers: dict[str, Any]) -> dict[str, str]:
    return {name: render(numbers) for name, render in RENDERERS.items()}


def blocks_in(text: str) -> dict[str, str]:
    """The README's marked blocks, name -> body."""
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def apply_blocks(text: str, blocks: dict[str, str]) -> str:
    """TEXT with every marked block's body replaced by its rendering."""
    missing = set(blocks) - set(blocks_in(text))
    if missing:
        raise ValueError(f"README lacks the marked blocks {sorted(missing)}")
    return _BLOCK.sub(lambda m: f"<!-- numbers:{m.group('name')} -->\n{blocks[m.group('name')]}"
                                f"<!-- /numbers:{m.group('name')} -->", text)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["collect"] and len(args) == 2:
        write_snapshot(collect(args[1]))
        print(f"wrote {SNAPSHOT}")
        return 0
    if args == ["render"]:
        text = README.read_text()
        new = apply_blocks(text, rendered_blocks(load_snapshot()))
        if new != text:
            with atomic_path(README) as tmp:
                Path(tmp).write_text(new)
        print("README number blocks " + ("rewritten" if new != text else "already current"))
        return 0
    print(f"usage: python -m fidlens.workflow.readme_numbers collect RESULTS (the demo's: {DEMO_RESULTS}) | render",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
