"""Run one benchmark script and keep what it printed as a record the README renders.

``python benchmarks/record.py benchmarks/bench_frechet.py [ARGS...]`` runs the script with the same
interpreter, streams its output, and on success writes ``benchmarks/records/bench_frechet.json``
(the printed lines, the arguments, date, CPU, usable cores, torch and numpy versions). The
README's ``benchmarks`` block (``fidlens.workflow.readme_numbers``) shows those lines as printed,
so a speed number in the README is always the output of a script run, never typed by hand.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from fidlens.core.machine import cpu_model, usable_cores

RECORDS = Path(__file__).resolve().parent / "records"


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def main(argv: list[str]) -> int:
    if not argv or not argv[0].endswith(".py"):
        print("usage: python benchmarks/record.py benchmarks/bench_NAME.py [ARGS...]", file=sys.stderr)
        return 2
    script, args = Path(argv[0]), argv[1:]
    started = datetime.datetime.now(datetime.timezone.utc)
    proc = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line.rstrip("\n"))
    if proc.wait() != 0:
        print(f"record: {script.name} exited with status {proc.returncode}; nothing recorded", file=sys.stderr)
        return proc.returncode
    record = {"script": script.name, "args": args, "output": lines, "date": started.strftime("%Y-%m-%d"),
              "cpu": cpu_model(), "cores": usable_cores(), "torch": _version("torch"),
              "numpy": _version("numpy"), "python": platform.python_version()}
    RECORDS.mkdir(parents=True, exist_ok=True)
    target = RECORDS / f"{script.stem}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, target)
    print(f"record: wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
