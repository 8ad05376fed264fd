"""Progress output: tqdm on a terminal, whole lines in logs, and a console echo for long jobs."""

from __future__ import annotations

import contextlib
import io
import re
import sys

from conftest import REPO
from tqdm import tqdm

from fidlens.core import progress
from fidlens.core.progress import PlainProgress, note, progress_bar
from fidlens.workflow.jobs import logged


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_tqdm_and_a_file_gets_plain_lines():
    assert not isinstance(progress_bar(total=3, file=_Terminal()), PlainProgress)
    assert isinstance(progress_bar(total=3, file=_Terminal()), tqdm)
    assert isinstance(progress_bar(total=3, file=io.StringIO()), PlainProgress)


def test_plain_lines_every_tenth_without_carriage_returns():
    log = io.StringIO()
    with progress_bar(total=1000, desc="features x", unit="img", file=log, console=io.StringIO()) as bar:
        for _ in range(1000):
            bar.update(1)
            bar.set_postfix(loss="0.5")
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert lines[0].startswith("features x: 0/1000 img (0 %)")
    assert lines[-1].startswith("features x: 1000/1000 img (100 %)") and lines[-1].endswith("(loss=0.5)")
    assert [int(re.search(r"\((\d+) %\)", line).group(1)) // 10 for line in lines] == list(range(11))


def test_iterables_without_a_total_and_disabled_bars():
    log = io.StringIO()
    assert list(progress_bar((i for i in range(5)), desc="gen", file=log)) == list(range(5))
    assert log.getvalue().splitlines()[-1].startswith("gen: 5 it")
    quiet = io.StringIO()
    for _ in progress_bar(range(5), file=quiet, disable=True):
        pass
    assert quiet.getvalue() == ""


def test_long_bars_echo_to_the_console_and_short_ones_do_not(monkeypatch):
    console, log = io.StringIO(), io.StringIO()
    with progress_bar(total=4, desc="short", file=log, console=console) as bar:
        bar.update(4)
    assert console.getvalue() == "" and log.getvalue()
    monkeypatch.setattr(progress, "CONSOLE_INTERVAL_S", 0.0)
    with progress_bar(total=4, desc="long", file=io.StringIO(), console=console) as bar:
        for _ in range(4):
            bar.update(1)
    echoed = console.getvalue().splitlines()
    assert echoed and echoed[-1].startswith("long: 4/4 it (100 %)")


def test_time_based_lines_when_the_total_is_unknown(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    log = io.StringIO()
    for _ in progress_bar(iter(range(3)), desc="t", file=log, mininterval=0):
        pass
    assert len(log.getvalue().splitlines()) >= 3


def test_note_reaches_the_log_and_the_console_of_a_logged_job(tmp_path, monkeypatch):
    console = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", console)
    log = tmp_path / "job.log"
    with logged(log):
        note("it. 10/50: FID 90.1", tag="results/resampling/demo/pre_logits")
        with progress_bar(total=50, desc="resampling pre_logits", unit="it") as bar:
            for _ in range(50):
                bar.update(1)
    text = log.read_text()
    assert "it. 10/50: FID 90.1" in text and "resampling pre_logits: 50/50 it (100 %)" in text
    assert "\r" not in text
    assert console.getvalue() == "[results/resampling/demo/pre_logits] it. 10/50: FID 90.1\n"


def test_note_outside_a_job_prints_once(capsys, monkeypatch):
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", terminal)
    with contextlib.redirect_stderr(terminal):  # stderr not redirected: no second copy
        note("hello", tag="x")
    assert capsys.readouterr().out == "hello\n" and terminal.getvalue() == ""


def test_every_progress_bar_of_the_package_uses_the_helper():
    direct = [path.name for path in sorted((REPO / "src" / "fidlens").rglob("*.py"))
              if path.name != "progress.py" and re.search(r"\btqdm\(", path.read_text())]
    assert not direct, f"{direct} call tqdm directly; use fidlens.core.progress.progress_bar"
