"""The covariance convention of FID statistics: divide the scatter by N−1 (unbiased) or by N (population).

Statistics files record it as the plain string ``"unbiased"`` or ``"population"`` (key
``covariance``). A file without the key is read as ``"unbiased (assumed: file has no 'covariance'
key)"``: pytorch-fid's convention, but a guess, so comparability checks treat it as unknown while
the heatmaps' rank-1 update may rely on it. This module is the one place those strings are read.
"""

from __future__ import annotations

from enum import Enum

from fidlens.core.errors import StatisticsError

__all__ = ["Covariance"]


class Covariance(str, Enum):
    """A str-valued enum: ``Covariance.UNBIASED == "unbiased"``, and it formats as its value."""

    UNBIASED = "unbiased"
    POPULATION = "population"

    def __str__(self) -> str:  # "unbiased", never "Covariance.UNBIASED" (written into records and messages)
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def ddof(self) -> int:
        """numpy's delta degrees of freedom: the divisor is N − ddof."""
        return 1 if self is Covariance.UNBIASED else 0

    @property
    def unbiased(self) -> bool:
        """The flag of `fidlens.metrics.frechet.mean_and_covariance` and the bootstrap engines."""
        return self is Covariance.UNBIASED

    @classmethod
    def _split(cls, value: object) -> tuple[Covariance, bool] | None:
        """(convention, assumed) of a record such as 'unbiased' or 'unbiased (assumed: …)'; None if unreadable."""
        if isinstance(value, Covariance):
            return value, False
        if not isinstance(value, str):
            return None
        head, _, note = value.strip().partition(" (")
        try:
            return cls(head), note.lstrip().startswith("assumed")
        except ValueError:
            return None

    @classmethod
    def parse(cls, value: Covariance | str) -> Covariance:
        """The convention named by an enum, a string, or a stored record ('unbiased (assumed: …)' included)."""
        found = cls._split(value)
        if found is None:
            names = ", ".join(member.value for member in cls)
            raise StatisticsError(f"covariance must be one of {names}, not '{value}'")
        return found[0]

    @classmethod
    def read(cls, value: object, *, assumed: bool = True) -> Covariance | None:
        """The convention a metadata value names, or None when it names none (missing, 'unknown').

        With ``assumed=False`` a guess ('unbiased (assumed: …)') counts as unknown too: what
        comparability checks need, since only a recorded convention can be compared.
        """
        found = cls._split(value)
        if found is None or (found[1] and not assumed):
            return None
        return found[0]
