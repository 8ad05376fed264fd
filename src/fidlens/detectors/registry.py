"""Detectors by name: the one place that knows which detectors exist and how to build each.

Adding a detector is one file with a ``from_spec(spec, device) -> Detector`` function and one
line in `_BUILTIN` (see ``fidlens.detectors.precomputed`` for a complete small example), or,
from outside the package, one `register` call. Modules are imported only when their detector is
loaded, so listing detectors or reading a spec never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fidlens.core.errors import FidlensError
from fidlens.detectors.base import Detector, DetectorSpec

__all__ = ["LazyDetector", "available_detectors", "load_detector", "reads_images", "register", "registered"]

Factory = Callable[[DetectorSpec, Any], Detector]


@dataclass(frozen=True)
class _Entry:
    """Where a detector's ``from_spec`` lives (a module path, imported on first use, or the callable itself)."""

    target: str | Factory
    reads_images: bool = True  # False: features come from files (`Detector.read`), not from images

    def factory(self) -> Factory:
        if callable(self.target):
            return self.target
        return importlib.import_module(self.target).from_spec


_BUILTIN: dict[str, _Entry] = {
    "inception": _Entry("fidlens.detectors.inception_weights"),  # TF-2015 Inception-v3 (FID's own)
    "clip": _Entry("fidlens.detectors.clip"),  # OpenAI CLIP ViT-B/32 image tower (CLIP-FID)
    "precomputed": _Entry("fidlens.detectors.precomputed", reads_images=False),  # embeddings made elsewhere
    "pixels": _Entry("fidlens.detectors.pixels"),  # downsampled grey pixels: an offline control space, no network
}
_REGISTRY: dict[str, _Entry] = dict(_BUILTIN)


def register(name: str, *, reads_images: bool = True) -> Callable[[Factory], Factory]:
    """Decorator: make ``factory(spec, device) -> Detector`` loadable as NAME (``--detector NAME``).

    Re-registering a name replaces it, so a notebook can redefine its detector.
    """
    if not isinstance(name, str) or not name.strip():
        raise FidlensError(f"a detector name must be a non-empty string, not {name!r}")

    def decorate(factory: Factory) -> Factory:
        _REGISTRY[name] = _Entry(factory, reads_images)
        return factory

    return decorate


def available_detectors() -> list[str]:
    """Names `load_detector` accepts, sorted."""
    return sorted(_REGISTRY)


def registered(name: str) -> str:
    """NAME when it is a registered detector, else a one-line error listing the ones there are."""
    if name not in _REGISTRY:
        raise FidlensError(f"unknown detector '{name}'; available: {', '.join(available_detectors())}")
    return name


def reads_images(spec: DetectorSpec | str | dict) -> bool:
    """Whether the detector computes features from images (False: it reads stored embeddings)."""
    return _REGISTRY[registered(DetectorSpec.from_any(spec).name)].reads_images


def load_detector(spec: DetectorSpec | str | dict | None = None, device: Any = "auto") -> Detector:
    """Build the detector SPEC names (a spec, a name, or ``{name, weights}``) on DEVICE ('auto': CUDA if visible)."""
    spec = DetectorSpec.from_any(spec)
    return _REGISTRY[registered(spec.name)].factory()(spec, device)


class LazyDetector:
    """A detector loaded on first call and kept: the CLI names it early and pays for it only if images need it.

    ``spec`` is readable before loading, so code can route stored embeddings without building anything.
    """

    def __init__(self, spec: DetectorSpec, load: Callable[[DetectorSpec], Detector]):
        self.spec = spec
        self._load = load
        self._detector: Detector | None = None

    def __call__(self) -> Detector:
        if self._detector is None:
            self._detector = self._load(self.spec)
        return self._detector
