"""The second, independent feature space a resampling run also measures its draws in (the control).

Why: learned weights can lower FID by matching what Inception cares about (its "perceptual null
space") without the set getting closer to the reals; the paper checks every draw with CLIP-FID.
Any registered detector can be that control (`fidlens.detectors.registry`): CLIP, another
Inception, stored embeddings (``precomputed``) or, offline, downsampled grey pixels (``pixels``).
Its features are made once per image set / pool (rules/resampling.smk) and read from files here.

`ControlSpace` is how outputs name that space: the log column (``clip_fid``, ``pixels_fid``), the
short title ("CLIP-FID", "pixels-FID") and the label with what the features are ("pixels-FID
(16×16 grey pixels)"). Pure Python: the workflow builds it while planning, without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from fidlens.detectors.base import DetectorSpec

__all__ = ["CLIP_SPACE", "ControlSpace", "control_space"]

_TITLES = {"clip": "CLIP-FID", "inception": "Inception-FID"}


@dataclass(frozen=True)
class ControlSpace:
    """How the control space is named in the log (``column``), on the curves (``title``) and in text (``label``)."""

    name: str  # the registry's detector name
    column: str  # the log column of its FID, e.g. pixels_fid
    title: str  # e.g. pixels-FID
    label: str  # e.g. pixels-FID (16×16 grey pixels)

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "column": self.column, "title": self.title, "label": self.label}


def control_space(name: str, weights: str = "default") -> ControlSpace:
    """The control space of detector NAME with WEIGHTS (a FidlensError when pixels' size is not one)."""
    spec = DetectorSpec(name, weights)
    if name == "pixels":
        from fidlens.detectors.pixels import PixelsDetector  # numpy only: checks the size

        size = PixelsDetector(spec).size
        what = f"{size}×{size} grey pixels"
    elif name == "clip":
        what = f"CLIP ViT-B/32, {spec.record_name()}"
    elif name == "inception":
        what = f"Inception-v3, {spec.record_name()}"
    elif name == "precomputed":
        folder = weights.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]  # the embeddings' folder names them
        what = f"precomputed embeddings, {folder}"
    else:
        what = spec.record_name()
    title = _TITLES.get(name, f"{name}-FID")
    return ControlSpace(name=name, column=f"{name.replace('-', '_')}_fid", title=title, label=f"{title} ({what})")


# No control configured: the log keeps its CLIP-FID column, empty, as it always had.
CLIP_SPACE = ControlSpace(name="clip", column="clip_fid", title="CLIP-FID", label="CLIP-FID (CLIP ViT-B/32)")
