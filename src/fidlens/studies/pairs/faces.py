"""The face-presence rate: the share of images in which a face detector finds a face.

FID sees texture statistics; a generator can improve FID while its faces fall apart. The
pairs study therefore reports, beside FID, how often a plain frontal-face detector finds a
face. The detector is OpenCV's Haar cascade (Viola–Jones) with fixed settings
(`FaceDetectorSettings`), so the rate is reproducible and comparable between models:

1. the image becomes greyscale (BT.601 luma; an alpha channel is dropped, not composited);
2. it is resized so its shorter side is ``working_size`` px (INTER_AREA when shrinking,
   INTER_CUBIC when enlarging), so 64² demo faces and 1024² FFHQ faces are searched alike;
3. a border of ``padding · working_size`` px is added on every side by replicating the edge
   pixels: aligned face crops (FFHQ, ORL) fill the frame, and the cascade misses faces whose
   box touches the border;
4. ``detectMultiScale3`` runs with ``scaleFactor``, ``minNeighbors``, a minimum face of
   ``min_face · working_size`` px and ``outputRejectLevels=True``.

An image *has a face* when at least one box survives. Its *score* is the largest last-stage
weight (``levelWeights``) among the surviving boxes: a continuous confidence that ranks
images with faces. Images without a face score `NO_FACE_SCORE` (−inf), below every face;
the weight itself may be negative, so 0 is not a safe "no face" value.

Inputs are uint8: numpy arrays are channels-last (HW, HW1, HWC with 3 = RGB or 4 = RGBA),
torch tensors channels-first (CHW, or NCHW batches as generators output them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from fidlens.core.errors import FidlensError
from fidlens.core.progress import progress_bar

NO_FACE_SCORE = float("-inf")
_CHANNELS = (1, 3, 4)


@dataclass(frozen=True)
class FaceDetectorSettings:
    """Fixed detector settings; the defaults were tuned on ORL faces and StyleGAN3 samples."""

    cascade: str = "haarcascade_frontalface_default.xml"  # a file in cv2.data.haarcascades, or a path
    working_size: int = 256  # the shorter side after resizing, px
    padding: float = 0.2  # replicated border on each side, as a fraction of working_size
    scale_factor: float = 1.1  # image pyramid step of detectMultiScale
    min_neighbors: int = 5  # overlapping raw detections needed to keep a box
    min_face: float = 0.3  # smallest face box side, as a fraction of working_size

    def __post_init__(self) -> None:
        if self.working_size < 24:
            raise FidlensError(f"working_size must be at least 24 px (the cascade window), not {self.working_size}")
        if not 0 <= self.padding <= 1:
            raise FidlensError(f"padding must be between 0 and 1 (a fraction of the side), not {self.padding}")
        if self.scale_factor <= 1:
            raise FidlensError(f"scale_factor must be above 1, not {self.scale_factor}")
        if self.min_neighbors < 0:
            raise FidlensError(f"min_neighbors must be 0 or more, not {self.min_neighbors}")
        if not 0 <= self.min_face <= 1:
            raise FidlensError(f"min_face must be between 0 and 1 (a fraction of the side), not {self.min_face}")

    @property
    def min_face_px(self) -> int:
        return round(self.min_face * self.working_size)

    @property
    def padding_px(self) -> int:
        return round(self.padding * self.working_size)

    def describe(self) -> str:
        """One line naming the cascade and every setting."""
        return (f"OpenCV {cv2.__version__} Haar cascade {Path(self.cascade).name}; shorter side resized to "
                f"{self.working_size} px (INTER_AREA down, INTER_CUBIC up), {self.padding:.0%} replicated border, "
                f"scaleFactor {self.scale_factor:g}, minNeighbors {self.min_neighbors}, "
                f"min face {self.min_face:.0%} of the side")


def _load_cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(name) if Path(name).is_file() else Path(cv2.data.haarcascades) / name
    if not path.is_file():
        raise FidlensError(f"Haar cascade '{name}' not found (looked in {cv2.data.haarcascades})")
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FidlensError(f"OpenCV could not load the cascade {path}")
    return cascade


def _as_numpy(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """A channels-last numpy view of one image (torch CHW is transposed)."""
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            if array.shape[0] not in _CHANNELS:
                raise FidlensError(f"a torch image must be CHW with 1, 3 or 4 channels, got shape {tuple(array.shape)}")
            array = array.transpose(1, 2, 0)
        return array
    if isinstance(image, np.ndarray):
        return image
    raise FidlensError(f"expected an image as a numpy array or torch tensor, got {type(image).__name__}")


def grey_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """One image as a contiguous greyscale uint8 HW array (the detector's input)."""
    array = _as_numpy(image)
    if array.dtype != np.uint8:
        raise FidlensError(f"the face detector needs uint8 images (0–255), got {array.dtype}; "
                           "convert generator output with fidlens.generators.base.to_uint8")
    if array.ndim == 3 and array.shape[2] not in _CHANNELS:
        raise FidlensError(f"an image must be HW or HWC with 1, 3 or 4 channels, got shape {array.shape}")
    if array.ndim not in (2, 3):
        raise FidlensError(f"an image must be HW or HWC (torch: CHW), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise FidlensError(f"empty image (shape {array.shape})")
    if array.ndim == 2 or array.shape[2] == 1:
        return np.ascontiguousarray(array.reshape(array.shape[:2]))
    return cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_RGB2GRAY)


def _iterate(images: Iterable) -> Iterator:
    """Single images out of a batch: torch NCHW / numpy NHWC arrays or any iterable of images."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise FidlensError(f"a torch batch must be NCHW, got shape {tuple(images.shape)}")
        images = images.detach().cpu()
    elif isinstance(images, np.ndarray) and images.ndim not in (3, 4):
        raise FidlensError(f"a numpy batch must be NHW or NHWC, got shape {images.shape}")
    return iter(images)


class FaceDetector:
    """A frontal-face Haar cascade with fixed settings (see the module docstring)."""

    def __init__(self, settings: FaceDetectorSettings | None = None):
        self.settings = settings if settings is not None else FaceDetectorSettings()
        self._cascade = _load_cascade(self.settings.cascade)

    def prepare(self, image: np.ndarray | torch.Tensor) -> np.ndarray:
        """The greyscale, resized and padded image the cascade searches."""
        s = self.settings
        grey = grey_uint8(image)
        h, w = grey.shape
        factor = s.working_size / min(h, w)
        if factor != 1:
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        pad = s.padding_px
        return cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else grey

    def detect(self, image: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (x, y, w, h) in the prepared image's pixels, and their level weights."""
        s = self.settings
        side = s.min_face_px
        boxes, _, weights = self._cascade.detectMultiScale3(
            self.prepare(image), scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors,
            minSize=(side, side), outputRejectLevels=True)
        return np.asarray(boxes, dtype=np.int64).reshape(-1, 4), np.asarray(weights, dtype=np.float64).reshape(-1)

    def score(self, image: np.ndarray | torch.Tensor) -> float:
        """The best face's level weight; `NO_FACE_SCORE` (−inf) when no face is found."""
        _, weights = self.detect(image)
        return float(weights.max()) if weights.size else NO_FACE_SCORE

    def has_face(self, image: np.ndarray | torch.Tensor) -> bool:
        """Whether at least one face box survives."""
        return self.score(image) > NO_FACE_SCORE

    def scores(self, images: Iterable, progress: bool = True) -> np.ndarray:
        """Scores (float64, one per image) of a batch or any iterable of images."""
        total = len(images) if hasattr(images, "__len__") else None
        items = _iterate(images)
        bar = progress_bar(items, total=total, desc="face detection", unit="img", disable=not progress)
        return np.array([self.score(image) for image in bar], dtype=np.float64)

    def describe(self) -> str:
        """One line naming the detector and its settings (for logs, READMEs and captions)."""
        return self.settings.describe()


def face_flags(scores: np.ndarray | Iterable[float]) -> np.ndarray:
    """Which scores mean "a face was found" (everything above `NO_FACE_SCORE`)."""
    return np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64) > NO_FACE_SCORE


def face_presence_rate(flags: np.ndarray | Iterable[bool]) -> float:
    """The share of images with a face, from per-image booleans."""
    array = np.asarray(list(flags) if not isinstance(flags, np.ndarray) else flags)
    if array.size == 0:
        raise FidlensError("the face-presence rate of no images is undefined")
    if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
        raise FidlensError("face_presence_rate takes booleans (has a face or not); use face_flags(scores) first")
    return float(array.astype(bool).mean())
