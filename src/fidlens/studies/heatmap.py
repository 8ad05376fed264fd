"""FID sensitivity heatmaps: where in one image FID is sensitive (Kynkäänniemi et al. 2023, Sec. 2).

The image's pool3 feature f joins the generated set with the exact unbiased rank-1 update
    μ′ = ((N−1)/N) μg + f/N,   Σ′ = ((N−2)/(N−1)) Σg + (1/N)(f − μg)ᵀ(f − μg),
and L = FID(μr, Σr, μ′, Σ′) in float64. Because pool3 is the spatial mean of the 8×8
``mixed_10`` map A, ∂L/∂A^k_ij = g_k / 64 with g = ∂L/∂f, so one forward pass and the
2048 numbers g give the map: Σ_k w_k A^k with w_k = (g_k/64)² (the release's "squared"
weighting) or |g_k|/64 (the pairs study's "absolute" one). No backward pass through
Inception is needed; the tests check this identity against one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from fidlens.core.errors import FidlensError, StatisticsError
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.frechet import matrix_sqrt_psd, trace_sqrt_psd
from fidlens.detectors.base import Detector, require_heatmaps
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.metrics.stats import Statistics

WEIGHTINGS = ("squared", "absolute")
MAP_SIZE = 8


@dataclass
class Explanation:
    """One explained image: the 8×8 map, its picture, and the numbers behind it."""

    image: np.ndarray  # uint8 HWC
    cam: np.ndarray  # float64 8×8, before normalisation
    overlay: np.ndarray  # float RGB in [0, 1], image size
    heat: np.ndarray  # float RGB colormap in [0, 1], image size
    fid_with_image: float
    feature_gradient: np.ndarray  # g = ∂L/∂f (2048,)
    top_classes: list[tuple[int, float]] | None  # (index, probability), best first; None without logits
    fid_without_image: float = float("nan")  # FID of the N−1 generated images alone (same reference)

    @property
    def delta_fid(self) -> float:
        """FID with the image minus FID of the generated set without it."""
        return self.fid_with_image - self.fid_without_image

    @property
    def gradient_norm(self) -> float:
        """‖g‖ = ‖∂L/∂f‖₂, how strongly this image's feature pulls on FID."""
        return float(np.linalg.norm(self.feature_gradient))


class FidSensitivity:
    """Reference and generated statistics prepared once; each image costs one forward and one eigh.

    ``generated`` holds the statistics of N−1 images; the explained image makes N. The detector
    must expose its spatial map (``supports_heatmaps``: the Inception network does).
    """

    def __init__(self, detector: Detector, reference: Statistics, generated: Statistics,
                 *, weighting: str = "squared", device: torch.device | str | None = None):
        if weighting not in WEIGHTINGS:
            raise FidlensError(f"weighting must be one of {WEIGHTINGS}, not '{weighting}'")
        require_heatmaps(detector)
        if reference.mu.shape != generated.mu.shape:
            raise StatisticsError(f"feature dimensions differ: {reference.mu.shape[0]} vs {generated.mu.shape[0]}")
        if generated.num_images < 2:
            raise StatisticsError("the generated statistics must say how many images they hold (num_images ≥ 2)")
        if Covariance.read(generated.meta.get("covariance", Covariance.UNBIASED)) is not Covariance.UNBIASED:
            raise StatisticsError("the rank-1 update assumes unbiased (N−1) generated statistics")
        self.detector = detector
        self.weighting = weighting
        self.device = torch.device(device) if device is not None else torch.device(detector.device)
        as64 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.device)
        self.mu_r = as64(reference.mu)
        self.trace_r = float(np.trace(reference.sigma))
        sqrt_r = matrix_sqrt_psd(reference.sigma)
        self.sqrt_sigma_r = as64(sqrt_r)
        self.mu_g = as64(generated.mu)
        self.trace_g = float(np.trace(generated.sigma))
        # S Σg S, once: with Σ′ a rank-1 update of Σg, S Σ′ S = a·S Σg S + b·(Sδ)(Sδ)ᵀ, so each image
        # costs matrix-vector products and one eigen-decomposition, not d³ products.
        inner_g = sqrt_r @ np.asarray(generated.sigma, dtype=np.float64) @ sqrt_r
        self.inner_g = as64(0.5 * (inner_g + inner_g.T))
        self.n = generated.num_images + 1
        self._fid_without: float | None = None

    def fid_without_image(self) -> float:
        """FID of the generated statistics alone (N−1 images), by the same formula; computed once."""
        if self._fid_without is None:
            diff = self.mu_r - self.mu_g
            loss = diff @ diff + self.trace_r + self.trace_g - 2 * trace_sqrt_psd(self.inner_g)
            self._fid_without = float(loss)
        return self._fid_without

    def loss_and_gradient(self, feature: torch.Tensor) -> tuple[float, torch.Tensor]:
        """L = FID with ``feature`` added to the generated set, and g = ∂L/∂f (float64)."""
        f = feature.detach().to(self.device, torch.float64).reshape(-1).clone().requires_grad_(True)
        n = self.n
        a, b = (n - 2) / (n - 1), 1.0 / n  # Σ′ = a Σg + b δδᵀ, the exact unbiased update
        delta = f - self.mu_g
        mu = ((n - 1) / n) * self.mu_g + f / n
        u = self.sqrt_sigma_r @ delta
        inner = a * self.inner_g + b * torch.outer(u, u)  # = S Σ′ S
        trace_sigma = a * self.trace_g + b * (delta @ delta)
        diff = self.mu_r - mu
        loss = diff @ diff + self.trace_r + trace_sigma - 2 * trace_sqrt_psd(inner)
        (grad,) = torch.autograd.grad(loss, f)
        return float(loss.detach()), grad

    def channel_weights(self, grad: torch.Tensor) -> torch.Tensor:
        per_position = grad / (MAP_SIZE * MAP_SIZE)  # ∂L/∂A^k_ij, the same at every (i, j)
        return per_position**2 if self.weighting == "squared" else per_position.abs()

    def explain(self, image: np.ndarray | torch.Tensor, *, top_k: int = 10) -> Explanation:
        """The sensitivity map of one uint8 image (HWC or CHW)."""
        # a tensor may live on the GPU already; numpy cannot read it there
        chw = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
        if chw.ndim != 3:
            raise FidlensError(f"expected one image (H, W, C), got shape {tuple(chw.shape)}")
        if chw.shape[0] not in (1, 3):
            chw = chw.permute(2, 0, 1)
        with torch.inference_mode():
            out = self.detector.spatial_features(chw[None].to(self.device), want_logits=self.detector.has_logits)
        loss, grad = self.loss_and_gradient(out["features"][0])
        cam = torch.einsum("k,kij->ij", self.channel_weights(grad), out["spatial_map"][0].to(torch.float64))
        hwc = chw.permute(1, 2, 0).cpu().numpy()
        if hwc.shape[2] == 1:
            hwc = np.repeat(hwc, 3, axis=2)
        heat, overlay = render_overlay(cam.cpu().numpy(), hwc)
        top = None
        if out.get("logits") is not None:
            probs = torch.softmax(out["logits"][0].double(), dim=0)
            values, indices = probs.topk(top_k)
            top = [(int(i), float(v)) for i, v in zip(indices, values)]
        return Explanation(hwc, cam.cpu().numpy(), overlay, heat, loss, grad.cpu().numpy(), top,
                           self.fid_without_image())


def _minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant array (an all-zero map) is left as it is."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else x


def shared_limits(*cams: np.ndarray) -> tuple[float, float]:
    """One (min, max) over several maps, so their colours can be compared with each other."""
    if not cams:
        raise FidlensError("shared_limits needs at least one map")
    return min(float(np.min(c)) for c in cams), max(float(np.max(c)) for c in cams)


def render_overlay(cam: np.ndarray, image: np.ndarray, colormap: str = "viridis",
                   limits: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """8×8 map → uint8 → Lanczos upsampling → colormap; overlay = minmax(2·heat + image).

    Without ``limits`` the map is min–max normalised on its own (the release's picture). With
    ``limits`` (e.g. from :func:`shared_limits`) every map uses that one scale, and the overlay is
    (2·heat + image)/3 instead of a per-image min–max, so equal colours mean equal values.
    """
    from matplotlib import colormaps

    cam = cam.astype(np.float64)
    if limits is None:
        scaled = _minmax(cam)
    else:
        lo, hi = limits
        scaled = np.clip((cam - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(cam)
    cam8 = np.uint8(np.clip(scaled * 255, 0, 255))
    h, w = image.shape[:2]
    upsampled = np.asarray(Image.fromarray(cam8).resize((w, h), Image.Resampling.LANCZOS))
    heat = colormaps[colormap](upsampled / 255.0)[..., :3]
    mixed = 2.0 * heat + image.astype(np.float64) / 255.0
    overlay = _minmax(mixed) if limits is None else np.clip(mixed / 3.0, 0.0, 1.0)
    return heat, overlay


def no_labels_note() -> str:
    return "no class labels: detector has no logits"


def class_caption(top: list[tuple[int, float]] | None) -> str:
    if top is None:
        return no_labels_note()
    index, prob = top[0]
    return f"Top-1: ImageNet class #{index} (p = {prob:.2f})"


def explain_seeds(sensitivity: FidSensitivity, G, seeds: list[int], *, progress: bool = True,
                  sampling: Sampling = DEFAULT_SAMPLING) -> list[Explanation]:
    """Heatmaps of generator images z = RandomState(seed).randn(1, z_dim), one forward each."""
    from fidlens.generators.generate import images_for_seeds
    from fidlens.core.progress import progress_bar

    out = []
    for seed in progress_bar(seeds, desc="heatmaps", unit="img", disable=not progress):
        image = images_for_seeds(G, [seed], device=sensitivity.device, sampling=sampling)[0]
        out.append(sensitivity.explain(image))
    return out


def explain_source_images(sensitivity: FidSensitivity, path: str | os.PathLike, indices: list[int], *,
                          progress: bool = True) -> list[Explanation]:
    """Heatmaps of images from a folder or dataset ZIP (e.g. a real image, or a saved sample)."""
    from fidlens.data.datasets import open_image_source
    from fidlens.core.progress import progress_bar

    source = open_image_source(path)
    bad = [i for i in indices if not 0 <= i < len(source)]
    if bad:
        raise FidlensError(f"image index {bad[0]} is out of range: {path} has {len(source)} images")
    return [sensitivity.explain(source[i]) for i in progress_bar(indices, desc="heatmaps", unit="img", disable=not progress)]


def describe_setup(sensitivity: FidSensitivity, reference: Statistics, generated: Statistics) -> str:
    return (f"{sensitivity.weighting} gradient weighting · reference N={reference.num_images}, "
            f"generated N={generated.num_images}+1 · {sensitivity.detector.weights_name}")
