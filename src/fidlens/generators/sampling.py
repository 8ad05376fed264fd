"""How a generator is sampled (truncation ψ and cutoff, noise mode, class), checked once where it enters.

The CLI flags, the workflow's rule params and the studies all hand the generator the same four
options; a `Sampling` carries them together so a bad value is refused with one message before any
network is loaded, and nothing downstream re-checks or re-spells them. No torch here: the
workflow and the CLI parser import this without loading a network.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fidlens.core.errors import FidlensError

__all__ = ["DEFAULT_SAMPLING", "NOISE_MODES", "SAMPLING_KEYS", "Sampling", "check_noise_mode"]

NOISE_MODES = ("const", "random", "none")
SAMPLING_KEYS = ("truncation_psi", "truncation_cutoff", "noise_mode", "class_idx")


def check_noise_mode(noise_mode: object) -> str:
    """The one noise-mode check (sampling options and every network's synthesis call use it)."""
    if not isinstance(noise_mode, str) or noise_mode not in NOISE_MODES:
        raise FidlensError(f"noise mode must be one of {', '.join(NOISE_MODES)}, not '{noise_mode}'")
    return noise_mode


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_index(what: str, value: object) -> None:
    if value is not None and not (_is_int(value) and value >= 0):
        raise FidlensError(f"{what} must be a whole number ≥ 0 or empty, not {value!r}")


@dataclass(frozen=True)
class Sampling:
    """The generator options every image of a set, heatmap or study is made with (NVIDIA's names).

    Values are kept as given (an integer ψ stays an integer), so records and cache keys built
    from `as_dict` are the same as those written before this type existed.
    """

    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    class_idx: int | None = None

    def __post_init__(self) -> None:
        psi = self.truncation_psi
        if isinstance(psi, bool) or not isinstance(psi, numbers.Real) or not math.isfinite(psi):
            raise FidlensError(f"truncation psi must be a finite number, not {psi!r}")
        _check_index("truncation cutoff", self.truncation_cutoff)
        check_noise_mode(self.noise_mode)
        _check_index("class", self.class_idx)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> Sampling:
        """Sampling from a plain dict (rule params, config); keys not named in ``ignore`` must be sampling keys.

        A misspelt key would otherwise be dropped and the default used in silence.
        """
        if not isinstance(values, Mapping):
            raise FidlensError(f"sampling options must be a mapping of {', '.join(SAMPLING_KEYS)}, "
                               f"not {type(values).__name__}")
        unknown = sorted(str(key) for key in set(values) - set(SAMPLING_KEYS) - set(ignore))
        if unknown:
            raise FidlensError(f"unknown sampling option {', '.join(repr(k) for k in unknown)}; "
                               f"the options are {', '.join(SAMPLING_KEYS)}")
        return cls(**{key: values[key] for key in SAMPLING_KEYS if key in values})

    def as_dict(self) -> dict[str, Any]:
        """The four options as a plain dict, in the order records have always used."""
        return {key: getattr(self, key) for key in SAMPLING_KEYS}

    def kwargs(self) -> dict[str, Any]:
        """Keywords of the generator call ``G(z, c, **kwargs)``; the class goes into ``c``."""
        return {"truncation_psi": self.truncation_psi, "truncation_cutoff": self.truncation_cutoff,
                "noise_mode": self.noise_mode}

    def mapping_kwargs(self) -> dict[str, Any]:
        """Keywords of ``G.mapping(z, c, **kwargs)``."""
        return {"truncation_psi": self.truncation_psi, "truncation_cutoff": self.truncation_cutoff}


DEFAULT_SAMPLING = Sampling()  # NVIDIA's defaults: no truncation, constant noise, no class (frozen: safe to share)
