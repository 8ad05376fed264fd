"""Checks on command-line arguments, run while the command line is parsed.

argparse ``type=`` validators for numbers, seeds and devices, and checks that an output
file or folder can be written. They run before any network is loaded or any image is read,
so a typo costs a one-line ``argument --x: ...`` error, not a finished extraction.
The plain ``check_*`` functions raise `FidlensError` for commands that check later.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from fidlens.core.errors import FidlensError
from fidlens.generators.latents import MAX_SEED

__all__ = [
    "check_output_dir",
    "check_output_file",
    "device",
    "existing_dir",
    "finite_float",
    "int_in",
    "nonnegative_int",
    "output_dir",
    "output_file",
    "positive_float",
    "positive_int",
    "seconds",
    "seed",
    "seed_list",
    "workers",
]

T = TypeVar("T")


def _argtype(name: str, convert: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from CONVERT, whose FidlensError/ValueError becomes argparse's one-line error."""

    def parse(text: str) -> T:
        try:
            return convert(text)
        except FidlensError as exc:
            raise argparse.ArgumentTypeError(" ".join(str(exc).split())) from None

    parse.__name__ = name
    return parse


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FidlensError(f"expected a whole number, not {text!r}") from None


def int_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A whole number in [LOW, HIGH] (either bound may be open)."""

    def convert(text: str) -> int:
        value = _int(text)
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                raise FidlensError(f"must be at least {low}, not {value}")
            if low is None:
                raise FidlensError(f"must be at most {high}, not {value}")
            raise FidlensError(f"must be between {low} and {high}, not {value}")
        return value

    return _argtype("int", convert)


positive_int = int_in(1)
nonnegative_int = int_in(0)
seed = int_in(0, MAX_SEED)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FidlensError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise FidlensError(f"must be a finite number, not {text!r}")
    return value


finite_float = _argtype("float", _finite)


def _positive(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise FidlensError(f"must be a positive number, not {text!r}")
    return value


positive_float = _argtype("float", _positive)


def _seconds(text: str) -> float:
    value = _positive(text)
    if value > 86400:
        raise FidlensError(f"must be at most 86400 seconds (a day), not {text!r}")
    return value


seconds = _argtype("seconds", _seconds)


def _max_workers() -> int:
    from fidlens.detectors.device import available_cpus

    return max(8, 4 * available_cpus())


def _workers(text: str) -> int:
    value = _int(text)
    limit = _max_workers()
    if not 0 <= value <= limit:
        raise FidlensError(f"must be between 0 (decode in the main process) and {limit} (4 per CPU core), not {value}")
    return value


workers = _argtype("int", _workers)


def _seed_list(text: str) -> list[int]:
    from fidlens.generators.generate import parse_seeds

    return parse_seeds(text)


seed_list = _argtype("seeds", _seed_list)
"""'0-3,10' → [0, 1, 2, 3, 10], each seed in [0, 2**32 - 1]."""


def _device(text: str) -> str:
    from fidlens.core.device_spec import parse_device_spec

    return parse_device_spec(text)


device = _argtype("device", _device)


def _os_reason(exc: OSError) -> str:
    return " ".join(str(exc.strerror or exc).split())


def _existing_ancestor(path: Path) -> Path:
    """The nearest of PATH and its parents that exists (a broken link counts, to be refused)."""
    current = path
    while not os.path.lexists(current):
        if current.parent == current:
            break
        current = current.parent
    return current


def _check_can_create(folder: Path, wanted: Path) -> None:
    """WANTED (a file or folder to be written) can be made inside FOLDER, creating FOLDER if needed."""
    try:
        ancestor = _existing_ancestor(folder)
        if ancestor.is_symlink() and not ancestor.exists():
            raise FidlensError(f"cannot write {wanted}: {ancestor} is a broken link")
        if not ancestor.is_dir():
            raise FidlensError(f"cannot write {wanted}: {ancestor} is a file, not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise FidlensError(f"cannot write {wanted}: no permission to write in {ancestor}")
    except OSError as exc:  # e.g. a name too long for the file system
        raise FidlensError(f"cannot write {wanted}: {_os_reason(exc)}") from None


def check_output_file(path: str | os.PathLike, *, suffixes: Sequence[str] = ()) -> Path:
    """PATH can be written as a file (missing parent folders are created when it is written)."""
    text = os.fspath(path)
    if not str(text).strip():
        raise FidlensError("the output file name is empty")
    target = Path(text)
    try:
        if str(text).endswith(("/", os.sep)) or target.is_dir():
            raise FidlensError(f"{target} is a folder; give a file name")
        if os.path.lexists(target) and not target.is_file():
            raise FidlensError(f"{target} exists and is not a regular file; it will not be replaced")
    except OSError as exc:  # e.g. a name too long for the file system
        raise FidlensError(f"cannot write {target}: {_os_reason(exc)}") from None
    if suffixes and target.suffix.lower() not in suffixes:
        raise FidlensError(f"{target} must end in {' or '.join(suffixes)}")
    _check_can_create(target.parent, target)
    return target


def check_output_dir(path: str | os.PathLike) -> Path:
    """PATH is a folder that exists or can be created, and files can be written in it."""
    text = os.fspath(path)
    if not str(text).strip():
        raise FidlensError("the output folder name is empty")
    target = Path(text)
    try:
        if os.path.lexists(target) and not target.is_dir():
            raise FidlensError(f"{target} is a file, not a folder")
    except OSError as exc:
        raise FidlensError(f"cannot write in {target}: {_os_reason(exc)}") from None
    _check_can_create(target, target)
    return target


def output_file(suffixes: Sequence[str] = ()) -> Callable[[str], str]:
    """argparse type: a writable output file (see `check_output_file`); the text is kept as given."""

    def convert(text: str) -> str:
        check_output_file(text, suffixes=suffixes)
        return text

    return _argtype("output file", convert)


def _output_dir(text: str) -> str:
    check_output_dir(text)
    return text


output_dir = _argtype("output folder", _output_dir)
"""argparse type: a folder that exists or can be created, and is writable; the text is kept as given."""


def _existing_dir(text: str) -> str:
    if not Path(text).is_dir():
        raise FidlensError(f"{text} is not a folder" if os.path.lexists(text) else f"folder not found: {text}")
    return text


existing_dir = _argtype("folder", _existing_dir)
