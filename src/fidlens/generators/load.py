"""Open any generator file fidlens knows, by its kind."""

from __future__ import annotations

import os
from pathlib import Path

from fidlens.core.errors import FidlensError
from fidlens.generators.base import GeneratorBase


def load_generator(path: str | os.PathLike, which: str = "G_ema") -> GeneratorBase:
    """An NVIDIA network ``.pkl`` (rebuilt without running its code) or a fidlens demo ``.pt``."""
    path = Path(path)
    if not path.is_file():
        raise FidlensError(f"generator file not found: {path}")
    if path.suffix == ".pkl":
        from fidlens.generators.nvidia_pickle import load_nvidia_generator

        return load_nvidia_generator(path, which=which)
    from fidlens.generators.ppca import PPCAGenerator

    try:
        return PPCAGenerator.load(path)
    except FidlensError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:  # a crafted or foreign .pt
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FidlensError(f"{path} is not a usable fidlens demo generator: {detail}") from exc
