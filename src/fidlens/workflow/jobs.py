"""Glue for the workflow's scripts: `job` (log, threads, provenance), so each stays a few lines (config checks: `fidlens.workflow.config`).

torch is imported only by the scripts that use it (a manifest or table job should not pay for it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def logged(log_path: str | os.PathLike | None, threads: int | None = None) -> Iterator[None]:
    """Send stdout, stderr (progress bars included) and warnings of a rule to its log file."""
    torch = sys.modules.get("torch")  # imported by the scripts that compute with it; the rest never load it
    if threads and torch is not None:
        torch.set_num_threads(int(threads))
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, force=True)
        logging.captureWarnings(True)
        start = time.time()
        print(f"fidlens: {' '.join(sys.argv[:1])} threads={torch.get_num_threads() if torch else 1}")
        try:
            yield
        except BaseException as exc:
            print(f"error: {exc}")
            raise
        finally:
            print(f"fidlens: finished in {time.time() - start:.1f} s")


@dataclass
class JobContext:
    """What a script's `main` may want from its job besides the ``snakemake`` object's files and params."""

    rule: str | None
    log: str | None
    threads: int | None
    record: list[str] = field(default_factory=list)  # folders/files beside the outputs whose tables and figures get provenance

    def also_record(self, *paths: str | os.PathLike) -> None:
        """Record provenance, on success, for the tables and figures in PATHS too (e.g. a run's folder)."""
        self.record.extend(os.fspath(path) for path in paths)


@contextlib.contextmanager
def job(snakemake: Any, *, record: Iterable[str | os.PathLike] = ()) -> Iterator[JobContext]:
    """One Snakemake script job: its log and threads (as `logged`), and on success its provenance.

    Why one context: every script needs the same three things, and a script that forgot one of
    them (a figure without its ``.provenance.json``) went unnoticed. The log is the rule's first
    ``log:`` file; torch's thread count is set to the rule's threads when the script has loaded
    torch (this module never imports it). On success a provenance record is written beside each
    declared output that is a table or figure (a declared folder, e.g. a set of images, gets
    none) and beside every table and figure inside ``record`` / `JobContext.also_record`. A job
    that fails records nothing.
    """
    from fidlens.workflow.provenance import record_job_provenance

    logs = [os.fspath(path) for path in (getattr(snakemake, "log", None) or [])]
    threads = getattr(snakemake, "threads", None)
    context = JobContext(rule=getattr(snakemake, "rule", None), log=logs[0] if logs else None,
                         threads=int(threads) if threads else None, record=[os.fspath(p) for p in record])
    with logged(context.log, context.threads):
        yield context
    record_job_provenance(snakemake, extra=context.record, declared_folders=False)
