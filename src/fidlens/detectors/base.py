"""What every detector promises, and the small value that names one (`DetectorSpec`).

FID, KID and the studies need only per-image features from a network with a known
preprocessing; which network is a choice. The extraction code, the CLI and the workflow talk
to the `Detector` protocol below, so adding a detector never touches them (see
`fidlens.detectors.registry`). Torch-free: reading a config or a statistics file must not
pay for importing torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fidlens.core.errors import FidlensError

__all__ = [
    "DEFAULT_WEIGHTS",
    "Detector",
    "DetectorConfigDeprecation",
    "DetectorSpec",
    "detector_record",
    "require_heatmaps",
    "spec_for_job",
]

DEFAULT_WEIGHTS = "default"
_SPEC_KEYS = ("name", "weights")


class DetectorConfigDeprecation(FutureWarning):
    """A config uses the old ``inception_weights`` key; shown to users (FutureWarning), unlike DeprecationWarning."""


@dataclass(frozen=True)
class DetectorSpec:
    """Which detector, with which weights: what a config, a CLI flag or a job names.

    ``weights`` is the detector's own business: for ``inception`` 'default', a file or a URL;
    for ``clip`` a file; for ``precomputed`` a label naming where the embeddings came from.
    """

    name: str = "inception"
    weights: str = DEFAULT_WEIGHTS

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise FidlensError(f"detector name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.weights, str) or not self.weights.strip():
            raise FidlensError(f"detector weights must be a non-empty string, not {self.weights!r}")

    def record_name(self) -> str:
        """A label for the detector as metadata names it: the weights' file name (default_1.pt for Inception's default)."""
        if self.weights == DEFAULT_WEIGHTS:
            from fidlens.assets.store import DEFAULT_INCEPTION_FILENAME

            return DEFAULT_INCEPTION_FILENAME if self.name == "inception" else self.name
        if self.name == "precomputed":
            return self.weights
        return self.weights.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]

    def as_dict(self) -> dict[str, str]:
        """``{"name": ..., "weights": ...}``, the form configs and workflow params use."""
        return {"name": self.name, "weights": self.weights}

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> DetectorSpec:
        """``{"name": ..., "weights": ...}`` (weights optional); unknown keys are refused, not ignored."""
        unknown = sorted(set(value) - set(_SPEC_KEYS))
        if unknown:
            raise FidlensError(f"detector: unknown key(s) {', '.join(map(str, unknown))}; expected name and weights")
        weights = value.get("weights", DEFAULT_WEIGHTS)
        return cls(name=str(value.get("name", "inception")), weights=str(weights) if weights is not None else "")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DetectorSpec:
        """The detector a config names: ``detector: {name, weights}``, or the legacy ``inception_weights: X``.

        The legacy key still works (it means the Inception detector with those weights) and
        says once how to write it now; giving both is refused, since one would silently lose.
        """
        has_new, has_old = "detector" in config, "inception_weights" in config
        if has_new and has_old:
            raise FidlensError("the config sets both 'detector' and the legacy 'inception_weights'; keep only "
                               "detector: {name: ..., weights: ...}")
        if has_old:
            weights = config["inception_weights"]
            warnings.warn(f"config key 'inception_weights' is deprecated; write detector: {{name: inception, "
                          f"weights: {weights}}}", DetectorConfigDeprecation, stacklevel=2)
            return cls("inception", str(weights) if weights is not None else "")
        if has_new:
            return cls.from_any(config["detector"])
        return cls()

    @classmethod
    def from_any(cls, value: DetectorSpec | str | Mapping[str, Any] | None) -> DetectorSpec:
        """A spec from a spec, a detector name (default weights) or a ``{name, weights}`` mapping."""
        if value is None:
            return cls()
        if isinstance(value, DetectorSpec):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        raise FidlensError(f"a detector is named by a name or {{name, weights}}, not {type(value).__name__}")


@runtime_checkable
class Detector(Protocol):
    """A network (or a reader of stored embeddings) that turns uint8 images into feature rows.

    ``features`` takes a uint8 NCHW tensor (or a list of CHW / 1CHW tensors of different
    sizes) and returns ``{"features": (N, feature_dim)}``, plus ``"logits"`` when asked and
    available, and ``"spatial_map"`` where the detector has one. ``resize`` names the
    preprocessing convention recorded in metadata; two sides with different conventions are
    not compared. ``reads_images`` is False for a detector whose features come from files
    (then `read` gives them); ``supports_heatmaps`` is True where `spatial_features` exists.
    """

    name: str
    feature_dim: int | None
    has_logits: bool
    logits_dim: int | None
    resize: str
    weights_name: str
    weights_sha256: str | None
    spec: DetectorSpec
    reads_images: bool
    supports_heatmaps: bool

    @property
    def device(self) -> Any: ...

    def to(self, device: Any) -> Detector: ...

    def features(self, images: Any, *, want_logits: bool = False) -> dict[str, Any]: ...


def detector_record(detector: Detector) -> dict[str, Any]:
    """What feature metadata records about the detector that made them (``detector_spec``)."""
    return {
        "name": detector.name,
        "weights": detector.spec.weights,
        "weights_name": detector.weights_name,
        "weights_sha256": detector.weights_sha256,
        "feature_dim": detector.feature_dim,
        "logits_dim": detector.logits_dim if detector.has_logits else None,
        "resize": detector.resize,
    }


def require_heatmaps(detector: Detector) -> None:
    """Refuse, in one line, a detector without the spatial map the FID heatmaps differentiate through."""
    if not getattr(detector, "supports_heatmaps", False):
        raise FidlensError(f"the '{detector.name}' detector has no spatial feature map, so it cannot draw FID "
                           "heatmaps; use --detector inception")


def spec_for_job(job: Any) -> DetectorSpec:
    """The detector a workflow job runs (JOB is the ``snakemake`` object): ``params.detector``, else Inception.

    A job's declared weights input is the file Snakemake tracks and fetched, so it is what the
    job loads; ``params.detector`` (``{name, weights}``) says which detector reads it. A rule
    without ``params.detector`` is an Inception rule of before the registry.
    """
    param = getattr(getattr(job, "params", None), "detector", None)
    weights_input = getattr(getattr(job, "input", None), "weights", None)
    if isinstance(param, (Mapping, DetectorSpec)):
        spec = DetectorSpec.from_any(param)
        return DetectorSpec(spec.name, str(weights_input)) if weights_input else spec
    if weights_input is None:
        raise FidlensError("this job names no detector: its rule gives neither params.detector nor a weights input")
    return DetectorSpec("inception", str(weights_input))
