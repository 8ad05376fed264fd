"""Progress that reads well where it lands: a live tqdm bar in a terminal, plain lines in a log.

tqdm redraws its bar with carriage returns, which a terminal turns into one moving line but
a log file keeps as hundreds of frames glued together. When stderr is not a terminal (a
Snakemake job's log, a redirected CLI run) every bar of the package writes whole lines
instead: one at the start, one per 10 % step, one at least every 30 s, and one at the end.

Inside a Snakemake job (``fidlens.workflow.jobs.logged`` has pointed stderr at the rule's log) a
bar that runs for long also echoes a line to the real console every 30 s, and ``note``
prints a message to both, so a long job is visibly alive without flooding the console
with the short ones.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from tqdm import tqdm

__all__ = ["PlainProgress", "console_stream", "note", "progress_bar"]

LOG_STEPS = 10  # a log line per 10 % of the total
LOG_INTERVAL_S = 30.0  # and at least every 30 s (the only rule when the total is unknown)
CONSOLE_INTERVAL_S = 30.0  # a redirected job's bar echoes to the console at most this often


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def console_stream() -> IO[str] | None:
    """The process's original stderr when sys.stderr has been redirected (a logged job), else None."""
    original = sys.__stderr__
    if original is None or sys.stderr is original:
        return None
    return original


def note(message: str, tag: str | None = None) -> None:
    """Print one line to stdout (a job's log) and, inside a logged job, to the console as well.

    ``tag`` prefixes the console copy only (``[tag] message``): there several jobs interleave,
    while the log belongs to one job.
    """
    print(message, flush=True)
    console = console_stream()
    if console is not None and console is not sys.stdout:
        try:
            console.write((f"[{tag}] " if tag else "") + message + "\n")
            console.flush()
        except (OSError, ValueError):  # the console went away; the log still has the line
            pass


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


class PlainProgress(tqdm):
    """A tqdm whose display is whole lines (no carriage returns, no cursor moves).

    Takes every tqdm argument; counting, rates and ``set_postfix`` are tqdm's own. Only the
    output differs: see the module docstring for when a line is written.
    """

    def __init__(self, *args: Any, console: IO[str] | None = None, **kwargs: Any) -> None:
        # set before tqdm.__init__, which already displays once
        self._last_step = -1
        self._last_line_t = -float("inf")
        self._last_line_n: float | None = None
        self._console = console if console is not None else console_stream()
        self._last_console_t = time.time()
        self._echoed = False
        super().__init__(*args, **kwargs)

    # -- the line --------------------------------------------------------------------------------
    def _line(self) -> str:
        d = self.format_dict
        n, total, elapsed = d["n"], d["total"], d["elapsed"]
        head = f"{self.desc}: " if self.desc else ""
        if total:
            text = f"{head}{_count(n)}/{_count(total)} {d['unit']} ({100.0 * n / total:.0f} %)"
        else:
            text = f"{head}{_count(n)} {d['unit']}"
        text += f", {self.format_interval(elapsed)} elapsed"
        done = n - (d.get("initial") or 0)
        if elapsed > 0 and done > 0:
            rate = done / elapsed
            if rate >= 1:
                text += f", {rate:.0f} {d['unit']}/s" if rate >= 100 else f", {rate:.3g} {d['unit']}/s"
            else:
                text += f", {1 / rate:.3g} s/{d['unit']}"
            if total and n < total:
                text += f", about {self.format_interval((total - n) / rate)} left"
        if self.postfix:
            text += f" ({self.postfix})"
        return text

    def _write(self, final: bool) -> None:
        now = time.time()
        n, total = self.n, self.total
        step = int(n * LOG_STEPS // total) if total else -1
        due = (step > self._last_step) or (now - self._last_line_t >= LOG_INTERVAL_S)
        if final:
            due = n != self._last_line_n
        if not due:
            return
        self._last_step, self._last_line_t, self._last_line_n = max(step, self._last_step), now, n
        line = self._line()
        self.fp.write(line + "\n")
        self.fp.flush()
        echo = now - self._last_console_t >= CONSOLE_INTERVAL_S or (final and self._echoed)
        if self._console is not None and self._console is not self.fp and echo:
            self._last_console_t, self._echoed = now, True
            try:
                self._console.write(line + "\n")
                self._console.flush()
            except (OSError, ValueError):
                self._console = None

    # -- tqdm's output hooks ---------------------------------------------------------------------
    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm clearing its bar: nothing to clear here
            return False
        self._write(final=False)
        return False  # never ask tqdm for the trailing "\r"

    def clear(self, nolock: bool = False) -> None:
        """Lines are never erased."""

    def moveto(self, n: int) -> None:
        """No cursor movement in a log."""

    def close(self) -> None:
        if not self.disable:
            self._write(final=True)
            self.leave = False  # tqdm's own close then writes nothing (no redraw, no "\n")
        super().close()


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """tqdm(iterable, **kwargs) on a terminal; ``PlainProgress`` (whole lines) anywhere else."""
    stream = kwargs.get("file") or sys.stderr
    if _is_terminal(stream):
        return tqdm(iterable, **kwargs)
    kwargs.pop("dynamic_ncols", None)
    return PlainProgress(iterable, **kwargs)
