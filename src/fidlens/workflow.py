"""Glue for the Snakemake scripts: logs, threads and device, so each script stays a few lines."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch


@contextlib.contextmanager
def logged(log_path: str | os.PathLike | None, threads: int | None = None) -> Iterator[None]:
    """Send stdout, stderr (progress bars included) and warnings of a rule to its log file."""
    if threads:
        torch.set_num_threads(int(threads))
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, force=True)
        logging.captureWarnings(True)
        start = time.time()
        print(f"fidlens: {' '.join(sys.argv[:1])} threads={torch.get_num_threads()}")
        try:
            yield
        except BaseException as exc:
            print(f"error: {exc}")
            raise
        finally:
            print(f"fidlens: finished in {time.time() - start:.1f} s")
