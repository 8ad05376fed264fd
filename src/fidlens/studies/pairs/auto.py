"""Pairs chosen by a program instead of a person (the offline demo's reproducible rule).

The rule: score the images of seeds ``0 … candidates−1`` with the face detector (no face
scores −∞); the ``count`` lowest scores are the bad seeds (ties by seed). For each, draw
``probes`` samples around it in z with ``step`` (exactly the probe page a person would look
at) and take the probe with the highest face score as the good partner (ties by probe number). A bad seed none of whose
probes scores higher than it is left out, and the file says so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from fidlens.generators.generate import latent_batches
from fidlens.generators.base import GeneratorBase
from fidlens.generators.sampling import DEFAULT_SAMPLING, Sampling
from fidlens.core.progress import progress_bar
from fidlens.generators.latents import LatentRef, latents_z
from fidlens.studies.pairs.spec import Pair, PairsFile


def _scores(G: GeneratorBase, refs: list[LatentRef], score: Callable[[np.ndarray], float], step: float,
            device: torch.device, batch_size: int, sampling: Sampling) -> np.ndarray:
    out = []
    z = latents_z(refs, G.z_dim, step)
    for images in latent_batches(G, z, batch_size=batch_size, sampling=sampling, device=device):
        out.extend(score(im) for im in images.permute(0, 2, 3, 1).cpu().numpy())
    return np.asarray(out, dtype=np.float64)


def _score_text(score: float) -> str:
    return "no face" if np.isneginf(score) else f"{score:.2f}"


def _tie_note(seed_scores: np.ndarray, chosen: np.ndarray) -> str:
    """Say how ties at the cut were broken, so nobody reads a ranking into them."""
    if len(chosen) == 0 or len(chosen) == len(seed_scores):
        return ""
    cut = seed_scores[chosen[-1]]
    tied = int(np.sum(seed_scores == cut))
    taken = int(np.sum(seed_scores[chosen] == cut))
    if tied <= taken:
        return ""
    return (f"; {tied} seeds tie at score {_score_text(cut)}: {taken} of them were taken by the lowest seed "
            "numbers (the face score cannot rank them)")


def choose_pairs_by_faces(G: GeneratorBase, score: Callable[[np.ndarray], float], *, candidates: int = 200,
                          count: int = 6, probes: int = 200, step: float = 0.5, batch_size: int = 32,
                          device: torch.device | str = "cpu", progress: bool = True,
                          sampling: Sampling = DEFAULT_SAMPLING) -> PairsFile:
    """The demo's pairs: the worst-scoring seeds and, for each, its best-scoring probe."""
    device = torch.device(device)

    def scores(refs: list[LatentRef]) -> np.ndarray:
        return _scores(G, refs, score, step, device, batch_size, sampling)

    seeds = [LatentRef(s) for s in range(candidates)]
    seed_scores = scores(seeds)
    worst = np.argsort(seed_scores, kind="stable")[:count]
    pairs, skipped = [], []
    for index in progress_bar(worst, desc="probing bad seeds", unit="seed", disable=not progress):
        bad = seeds[index]
        around = [LatentRef(bad.seed, k) for k in range(1, probes + 1)]
        probe_scores = scores(around)
        best = int(np.argmax(probe_scores))  # the first of equal maxima: the lowest probe number
        if probe_scores[best] <= seed_scores[index]:
            skipped.append(str(bad))
            continue
        pairs.append(Pair(bad, around[best], f"face score {_score_text(seed_scores[index])} → "
                                             f"{_score_text(probe_scores[best])}"))
    rule = (f"face detector: the {count} lowest-scoring of seeds 0-{candidates - 1}, each paired with the "
            f"highest-scoring of its {probes} probes at step {step}")
    rule += f"; {int(np.isfinite(seed_scores).sum())} of the {candidates} seeds show a face"
    rule += _tie_note(seed_scores, worst)
    if skipped:
        rule += f"; left out (no better probe): {', '.join(skipped)}"
    return PairsFile(pairs, step, rule=rule)
