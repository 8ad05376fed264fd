"""Names for latents: a plain seed, or a probe around a seed.

A pairs file must name the good partner of a bad image, and the good partner is usually
not a seed of its own but one of the samples drawn around the bad seed in z. Both are
written as short strings so people can copy them from the probe page:

- ``"123"`` (or the integer 123): z = ``RandomState(123).randn(1, z_dim)`` (NVIDIA's seed).
- ``"123~17"``: probe 17 around seed 123, z = z(123) + step · n₁₇, where n_k is row k of
  ``RandomState(123).randn(k + 1, z_dim)``. Row 0 of that stream *is* z(123), so the probes
  continue the seed's own stream and stay the same whatever the number of probes drawn.
  The step is not part of the name; it is stored once per pairs file (``probe_step``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fidlens.core.errors import FidlensError

MAX_SEED = 2**32 - 1
_PATTERN = re.compile(r"(\d+)(?:~(\d+))?")


@dataclass(frozen=True, order=True)
class LatentRef:
    """A seed (probe = 0) or the probe-th sample around it (probe ≥ 1)."""

    seed: int
    probe: int = 0

    def __str__(self) -> str:
        return str(self.seed) if self.probe == 0 else f"{self.seed}~{self.probe}"

    @property
    def file_stem(self) -> str:
        """A file-name-safe form: 0107 or 0107p17."""
        return f"{self.seed:04d}" if self.probe == 0 else f"{self.seed:04d}p{self.probe}"


def parse_latent(value: object) -> LatentRef:
    """'123', 123 or '123~17' → LatentRef; anything else is a clear error."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FidlensError(f"cannot read latent {value!r}: write a seed like 123 or a probe like 123~17")
    match = _PATTERN.fullmatch(str(value).strip())
    if not match:
        raise FidlensError(f"cannot read latent '{value}': write a seed like 123 or a probe like 123~17")
    seed = int(match.group(1))
    probe = int(match.group(2)) if match.group(2) is not None else 0
    if seed > MAX_SEED:
        raise FidlensError(f"seed {seed} in '{value}' is larger than 2**32 - 1")
    if match.group(2) is not None and probe < 1:
        raise FidlensError(f"probe numbers start at 1 ('{value}'): ~0 would be the seed itself")
    return LatentRef(seed, probe)


def probe_offsets(seed: int, count: int, z_dim: int) -> np.ndarray:
    """The unit-variance directions n_1..n_count around ``seed`` (count × z_dim, float64)."""
    return np.random.RandomState(seed).randn(count + 1, z_dim)[1:]


def latent_z(ref: LatentRef, z_dim: int, probe_step: float) -> np.ndarray:
    """z (1 × z_dim, float64) for a seed or a probe around it."""
    stream = np.random.RandomState(ref.seed).randn(ref.probe + 1, z_dim)
    z = stream[:1]
    if ref.probe:
        z = z + probe_step * stream[ref.probe : ref.probe + 1]
    return z


def latents_z(refs: list[LatentRef], z_dim: int, probe_step: float) -> np.ndarray:
    """Stacked z's (len(refs) × z_dim) for a list of latent names."""
    if not refs:
        return np.empty((0, z_dim))
    return np.concatenate([latent_z(r, z_dim, probe_step) for r in refs])
