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

from .errors import FidlensError, StatisticsError
from .frechet import matrix_sqrt_psd, trace_sqrt_psd
from .inception import FidInceptionV3
from .stats import Statistics

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


class FidSensitivity:
    """Reference and generated statistics prepared once; each image costs one forward and one eigh.

    ``generated`` holds the statistics of N−1 images; the explained image makes N.
    """

    def __init__(self, detector: FidInceptionV3, reference: Statistics, generated: Statistics,
                 *, weighting: str = "squared", device: torch.device | str | None = None):
        if weighting not in WEIGHTINGS:
            raise FidlensError(f"weighting must be one of {WEIGHTINGS}, not '{weighting}'")
        if reference.mu.shape != generated.mu.shape:
            raise StatisticsError(f"feature dimensions differ: {reference.mu.shape[0]} vs {generated.mu.shape[0]}")
        if generated.num_images < 2:
            raise StatisticsError("the generated statistics must say how many images they hold (num_images ≥ 2)")
        if not str(generated.meta.get("covariance", "unbiased")).startswith("unbiased"):
            raise StatisticsError("the rank-1 update assumes unbiased (N−1) generated statistics")
        self.detector = detector
        self.weighting = weighting
        self.device = torch.device(device) if device is not None else next(detector.parameters()).device
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
        chw = torch.as_tensor(np.asarray(image))
        if chw.ndim != 3:
            raise FidlensError(f"expected one image (H, W, C), got shape {tuple(chw.shape)}")
        if chw.shape[0] not in (1, 3):
            chw = chw.permute(2, 0, 1)
        with torch.inference_mode():
            out = self.detector.extract(chw[None].to(self.device), want_map=True, want_logits=self.detector.has_logits)
        loss, grad = self.loss_and_gradient(out.pool3[0])
        cam = torch.einsum("k,kij->ij", self.channel_weights(grad), out.mixed_10[0].to(torch.float64))
        hwc = chw.permute(1, 2, 0).cpu().numpy()
        if hwc.shape[2] == 1:
            hwc = np.repeat(hwc, 3, axis=2)
        heat, overlay = render_overlay(cam.cpu().numpy(), hwc)
        top = None
        if out.logits is not None:
            probs = torch.softmax(out.logits[0].double(), dim=0)
            values, indices = probs.topk(top_k)
            top = [(int(i), float(v)) for i, v in zip(indices, values)]
        return Explanation(hwc, cam.cpu().numpy(), overlay, heat, loss, grad.cpu().numpy(), top)


def _minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant array (an all-zero map) is left as it is."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else x


def render_overlay(cam: np.ndarray, image: np.ndarray, colormap: str = "viridis") -> tuple[np.ndarray, np.ndarray]:
    """8×8 map → uint8 → Lanczos upsampling → colormap; overlay = minmax(2·heat + image)."""
    from matplotlib import colormaps

    cam8 = np.uint8(np.clip(_minmax(cam.astype(np.float64)) * 255, 0, 255))
    h, w = image.shape[:2]
    upsampled = np.asarray(Image.fromarray(cam8).resize((w, h), Image.Resampling.LANCZOS))
    heat = colormaps[colormap](upsampled / 255.0)[..., :3]
    overlay = _minmax(2.0 * heat + image.astype(np.float64) / 255.0)
    return heat, overlay


def no_labels_note() -> str:
    return "no class labels: detector has no logits"


def class_caption(top: list[tuple[int, float]] | None) -> str:
    if top is None:
        return no_labels_note()
    index, prob = top[0]
    return f"Top-1: ImageNet class #{index} (p = {prob:.2f})"


def save_heatmap_figure(explanation: Explanation, path: str | os.PathLike, *, title: str, subtitle: str,
                        show_top10: bool = True) -> None:
    """Image | overlay (| Top-10 bars when logits exist), with the class or the no-logits note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    bars = show_top10 and explanation.top_classes is not None
    fig, axes = plt.subplots(1, 3 if bars else 2, figsize=(9.6 if bars else 6.6, 3.9))
    axes[0].imshow(explanation.image)
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(explanation.overlay)
    axes[1].set_title("FID sensitivity", fontsize=9)
    for ax in axes[:2]:
        ax.set_axis_off()
    if bars:
        idx, probs = zip(*explanation.top_classes)
        axes[2].barh(range(len(idx))[::-1], probs, color="0.4")
        axes[2].set_yticks(range(len(idx))[::-1], [f"#{i}" for i in idx], fontsize=7)
        axes[2].set_xlabel("probability", fontsize=8)
        axes[2].set_title("Top-10 ImageNet classes", fontsize=9)
    fig.suptitle(title, fontsize=10, wrap=True)
    fig.text(0.5, 0.07, class_caption(explanation.top_classes), ha="center", fontsize=9)
    fig.text(0.5, 0.02, subtitle, ha="center", fontsize=7, color="0.3", wrap=True)
    fig.tight_layout(rect=(0, 0.11, 1, 0.93))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


def save_heatmap_grid(explanations: list[Explanation], labels: list[str], rows: int, cols: int,
                      path: str | os.PathLike, *, title: str, subtitle: str) -> None:
    """rows × cols overlays, each captioned with its seed (and Top-1 class when known)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.15 * rows + 0.8), squeeze=False)
    for ax, explanation, label in zip(axes.flat, explanations, labels):
        ax.imshow(explanation.overlay)
        caption = label if explanation.top_classes is None else f"{label} · #{explanation.top_classes[0][0]}"
        ax.set_title(caption, fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10, wrap=True)
    note = no_labels_note() if explanations and explanations[0].top_classes is None else "#k = Top-1 ImageNet class"
    fig.text(0.5, 0.035, note, ha="center", fontsize=8)
    fig.text(0.5, 0.008, subtitle, ha="center", fontsize=7, color="0.3", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95), h_pad=1.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def explain_seeds(sensitivity: FidSensitivity, G, seeds: list[int], *, progress: bool = True,
                  **sampling) -> list[Explanation]:
    """Heatmaps of generator images z = RandomState(seed).randn(1, z_dim), one forward each."""
    from tqdm import tqdm

    from .generate import images_for_seeds

    out = []
    for seed in tqdm(seeds, desc="heatmaps", unit="img", disable=not progress):
        image = images_for_seeds(G, [seed], device=sensitivity.device, **sampling)[0]
        out.append(sensitivity.explain(image))
    return out


def explain_source_images(sensitivity: FidSensitivity, path: str | os.PathLike, indices: list[int], *,
                          progress: bool = True) -> list[Explanation]:
    """Heatmaps of images from a folder or dataset ZIP (e.g. a real image, or a saved sample)."""
    from tqdm import tqdm

    from .datasets import open_image_source

    source = open_image_source(path)
    bad = [i for i in indices if not 0 <= i < len(source)]
    if bad:
        raise FidlensError(f"image index {bad[0]} is out of range: {path} has {len(source)} images")
    return [sensitivity.explain(source[i]) for i in tqdm(indices, desc="heatmaps", unit="img", disable=not progress)]


def describe_setup(sensitivity: FidSensitivity, reference: Statistics, generated: Statistics) -> str:
    return (f"{sensitivity.weighting} gradient weighting · reference N={reference.num_images}, "
            f"generated N={generated.num_images}+1 · {sensitivity.detector.weights_name}")
