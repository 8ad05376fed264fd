"""Run the demo's Snakemake command and record how long it took and when the headline appeared.

``make demo`` runs ``python -m fidlens.workflow.demo_run -- snakemake ...``: the command's output is
passed through unchanged, and ``demo_run.json`` in the demo's results folder (``results/demo/``)
records the wall time, the number of jobs, the seconds until the headline table and figure were
written, the cores and the machine. Paths come from the demo config's plan (`demo_plan`).
The README's timing sentence is rendered from that record (``fidlens.workflow.readme_numbers``), so
the README never quotes a time nobody measured.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from fidlens.core.atomic import atomic_path
from fidlens.core.machine import cpu_model, usable_cores
from fidlens.workflow.targets import demo_plan

_DEMO = demo_plan()
HEADLINE = (_DEMO.demo_table(), _DEMO.demo_figure())
RECORD = Path(_DEMO.results) / "demo_run.json"
_STEPS = re.compile(r"(\d+) of (\d+) steps \(100%\) done")


def _written_after(path: Path, start: float) -> float | None:
    """Seconds from START until PATH was last written, if that happened during this run."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return round(mtime - start, 1) if mtime >= start else None


def run(command: list[str], record: Path = RECORD) -> int:
    """Run COMMAND, echo its output, and write the timing record when it succeeds."""
    start = time.time()
    jobs = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            match = _STEPS.search(line)
            if match:
                jobs = int(match.group(2))
    wall = time.time() - start
    if proc.returncode != 0:
        return proc.returncode
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "wall_s": round(wall, 1),
        "jobs": jobs,  # None: nothing was left to do
        "headline_s": {name: _written_after(Path(name), start) for name in HEADLINE},
        "cores": usable_cores(),
        "cpu": cpu_model(),
        "command": " ".join(command),
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(record) as tmp:
        Path(tmp).write_text(json.dumps(info, indent=2, allow_nan=False) + "\n")
    if jobs:
        print(f"demo: {jobs} jobs in {wall / 60:.0f} min {wall % 60:.0f} s; timing in {record}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m fidlens.workflow.demo_run -- COMMAND ...", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
