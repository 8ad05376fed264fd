"""Table 2's five sets measured again in a second, independent feature space (the control of the papers).

Why: FID moving when the selected images are fixed could be Inception's own preference; the
resampling paper checks such moves with CLIP-FID. Here any registered detector serves
(`fidlens.detectors.registry`; offline, e.g. ``pixels``): the study's images are rendered again
from its saved latents and edits (the generated set: rows of ``RandomState(latent_seed)``;
replacements: the same rows moved by the saved pair direction; refills: the saved stream
rows), measured with the control detector, and the five FIDs — with each selected image's
ΔFID — computed against the reference images measured the same way. The study's own numbers
are untouched; the output names the detector.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from fidlens.metrics.stats import Statistics
from fidlens.studies.pairs.study_file import Study
from fidlens.studies.pairs.table import FID_COLUMNS, study_row

__all__ = ["control_row", "control_study"]


def control_study(study: Study, G: Any, detector: Any, *, batch_size: int = 16, progress: bool = False) -> Study:
    """The study with its feature arrays (pool3, pool3_replaced, pool3_refill) measured by DETECTOR instead."""
    from fidlens.studies.pairs.selection import PairDirection
    from fidlens.studies.pairs.study import StudySettings, _Imager

    settings = StudySettings.from_mapping({**study.meta["settings"], "batch_size": batch_size})
    imager = _Imager(G, detector, settings, None, progress)
    direction = PairDirection(np.asarray(study.arrays["mean_bad"], np.float64),
                              np.asarray(study.arrays["mean_good"], np.float64))
    z_all = np.random.RandomState(settings.latent_seed).randn(settings.num_images, G.z_dim)
    arrays = dict(study.arrays)
    arrays["pool3"], _ = imager.measure(z_all, "control: generated set")
    arrays["pool3_replaced"], _ = imager.measure(z_all[study.selected], "control: replacements",
                                                 edit_ws=direction.replace)
    if "refill_index" in arrays:
        index = np.asarray(arrays["refill_index"], np.int64)
        stream = np.random.RandomState(settings.latent_seed).randn(int(index.max()) + 1, G.z_dim)
        arrays["pool3_refill"], _ = imager.measure(stream[index], "control: refill")
    return Study(arrays, dict(study.meta))


def control_row(study: Study, G: Any, detector: Any, reference_features: np.ndarray, *, covariance: str = "unbiased",
                batch_size: int = 16, log: Callable[[str], None] = print) -> dict:
    """Table 2's row in the control feature space, named by its detector (face rates are the study's own)."""
    from fidlens.studies.attribution_run import feature_space

    reference = Statistics.from_features(np.asarray(reference_features, np.float64), covariance=covariance)
    row = study_row(control_study(study, G, detector, batch_size=batch_size), reference, covariance=covariance)
    space = feature_space({"detector": detector.weights_name, "detector_spec": {"name": detector.name}})
    row.update(control_detector=space, reference_images=len(reference_features))
    log(f"control ({space}): " + ", ".join(f"{column} {row[column]:.4f}" for column in FID_COLUMNS))
    return row


def write_control_csv(row: dict, path: str | os.PathLike) -> None:
    """One line per Table 2 set: its FID in the control space, beside the detector that made it."""
    import csv
    import io

    from fidlens.core.atomic import write_text_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["set", "fid_control", "control_detector", "covariance"])
    for column in FID_COLUMNS:
        writer.writerow([column, repr(float(row[column])), row["control_detector"], row["covariance"]])
    write_text_atomic(path, buffer.getvalue())
