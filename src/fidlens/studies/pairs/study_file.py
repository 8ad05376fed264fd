"""The saved pairs study (``study.npz``): written once by the study, read by the table and the figures.

Plain arrays plus a JSON ``meta`` entry, never a pickle. Kept apart from `study`, which runs the
generator and the detector, so that the jobs that only read a study (Table 2's FIDs) import no torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import FidlensError
from fidlens.studies.pairs.selection import kept_indices

__all__ = ["FORMAT", "Study", "save_study"]

FORMAT = "fidlens-pairs-study-1"


def save_study(arrays: dict[str, np.ndarray], meta: dict, path: str | os.PathLike) -> None:
    """Write the arrays and META (JSON) to PATH atomically, as `Study.load` reads them."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)


@dataclass
class Study:
    """A saved study, read back with the sets it defines."""

    arrays: dict[str, np.ndarray]
    meta: dict

    @classmethod
    def load(cls, path: str | os.PathLike) -> Study:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # a truncated npz raises several types
            raise FidlensError(f"cannot read pairs study {path}: {exc}".splitlines()[0]) from None
        meta = json.loads(str(arrays.pop("meta", "{}")))
        if meta.get("format") != FORMAT:
            raise FidlensError(f"{path} is not a fidlens pairs study")
        return cls(arrays, meta)

    @property
    def num_images(self) -> int:
        return len(self.arrays["pool3"])

    @property
    def selected(self) -> np.ndarray:
        return self.arrays["selected"]

    @property
    def kept(self) -> np.ndarray:
        return kept_indices(self.num_images, self.selected)

    @property
    def delete_mode(self) -> str:
        return "refill" if "pool3_refill" in self.arrays else "shrink"

    def replaced_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and face flags of the set with every selected image swapped for its w′ image."""
        pool3, faces = self.arrays["pool3"].copy(), self.arrays["faces"].copy()
        pool3[self.selected] = self.arrays["pool3_replaced"]
        faces[self.selected] = self.arrays["faces_replaced"]
        return pool3, faces

    def deleted_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The set without the selected images; refilled from further latents in "refill" mode."""
        kept = self.kept
        pool3, faces = self.arrays["pool3"][kept], self.arrays["faces"][kept]
        if self.delete_mode == "refill":
            pool3 = np.concatenate([pool3, self.arrays["pool3_refill"]])
            faces = np.concatenate([faces, self.arrays["faces_refill"]])
        return pool3, faces
