"""Shared harness for the table-driven bad-input tests (tests/test_bad_inputs_*.py).

Every case builds its bad input inside a temporary folder, runs the real CLI entry point
(`fidlens.cli.main.main`, in-process so that 60+ cases stay fast), and asserts the promise of
docs/RELIABILITY.md:

- the exit status is the expected non-zero one (2 for a refusal);
- stderr ends with one line that names the problem (`error: ...`, or argparse's
  `fidlens CMD: error: ...`) and holds no "Traceback";
- no file was left behind (no new file anywhere under the case folder, except in the
  places the case allows, e.g. a quarantine folder);
- the next good run gives the correct answer (the case's `good` step, when it has one).
"""

from __future__ import annotations

import contextlib
import io
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_cli(argv: list[str]) -> CliResult:
    """Run `fidlens ARGV` in this process; an escaping exception is reported as a traceback."""
    from fidlens.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            err.write(traceback.format_exc())
            code = -1
    return CliResult(int(code), out.getvalue(), err.getvalue())


def snapshot(root: Path) -> set[str]:
    """Every file under ROOT, relative; the 'nothing left behind' check compares two of these."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@dataclass
class BadInput:
    """One row of a bad-input table.

    build(tmp) creates the bad input under tmp and returns the argv to run;
    expect is a regex the final stderr line must match;
    good(tmp, result_of_bad_run) runs the next good command and asserts its answer
    (optional); allowed_new is a regex of relative paths the bad run may create
    (e.g. a quarantine folder); code is the expected exit status.
    """

    id: str
    build: Callable[[Path], list[str]]
    expect: str
    code: int = 2
    good: Callable[[Path], None] | None = None
    allowed_new: str | None = None
    extra: dict = field(default_factory=dict)


def check_bad_input(case: BadInput, tmp: Path) -> CliResult:
    """Run one case and assert the promise; returns the CLI result for case-specific checks."""
    argv = case.build(tmp)
    before = snapshot(tmp)
    result = run_cli(argv)
    assert "Traceback" not in result.stderr, f"{case.id}: traceback\n{result.stderr}"
    assert result.code == case.code, f"{case.id}: exit {result.code}, expected {case.code}\n{result.stderr}"
    line = result.last_line
    assert "error" in line.lower(), f"{case.id}: last stderr line is not an error: {line!r}"
    assert re.search(case.expect, line, flags=re.IGNORECASE), f"{case.id}: {line!r} !~ {case.expect!r}"
    new = snapshot(tmp) - before
    if case.allowed_new:
        new = {p for p in new if not re.search(case.allowed_new, p)}
    assert not new, f"{case.id}: files left behind: {sorted(new)}"
    if case.good is not None:
        case.good(tmp)
    return result


def table(cases: list[BadInput]):
    """pytest.mark.parametrize over a list of cases, with their ids; a case run with the real weights is slow."""
    return pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.extra.get("weights") else [])
                                            for c in cases])
