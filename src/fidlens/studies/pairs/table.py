"""Table 2 of the pairs study: did FID notice the fixes? Our numbers beside the published ones.

Columns (each against the training set's statistics):
- FID: the N images as generated;
- FID_Replace: the selected images swapped for their w′ images (N images);
- FID_Delete: the selected images removed (N − n, "shrink") or removed and refilled from
  further latents that are not themselves selected (N, "refill");
- FID_Sub_Good: the n replacement images alone; FID_Sub_Bad: the n selected images alone.
Beside them: the face-presence rate of the full, replaced and deleted sets.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from fidlens.core.atomic import atomic_path
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.frechet import FewSamplesWarning, frechet_distance, mean_and_covariance
from fidlens.metrics.stats import Statistics
from fidlens.studies.pairs.study_file import Study

FID_COLUMNS = ("FID", "FID_Replace", "FID_Delete", "FID_Sub_Good", "FID_Sub_Bad")
FACE_COLUMNS = ("face_rate", "face_rate_Replace", "face_rate_Delete", "face_rate_Sub_Good", "face_rate_Sub_Bad")
PUBLISHED_KEYS = {"FID": "fid", "FID_Replace": "replace", "FID_Delete": "delete",
                  "FID_Sub_Good": "sub_good", "FID_Sub_Bad": "sub_bad"}


def fid_against(features: np.ndarray, reference: Statistics, covariance: Covariance | str) -> float:
    """FID of a feature set against reference statistics, float64, the configured convention."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)  # the small subsets are reported as such
        mu, sigma = mean_and_covariance(features, unbiased=Covariance.parse(covariance).unbiased)
    return float(frechet_distance(reference.mu, reference.sigma, mu, sigma))


def study_row(study: Study, reference: Statistics, *, covariance: Covariance | str = Covariance.UNBIASED) -> dict:
    """One model's Table 2 row: the five FIDs, the face rates and the set sizes."""
    covariance = Covariance.parse(covariance)
    a = study.arrays
    replaced, replaced_faces = study.replaced_set()
    deleted, deleted_faces = study.deleted_set()
    sets = {
        "": (a["pool3"], a["faces"]),
        "_Replace": (replaced, replaced_faces),
        "_Delete": (deleted, deleted_faces),
        "_Sub_Good": (a["pool3_replaced"], a["faces_replaced"]),
        "_Sub_Bad": (a["pool3"][study.selected], a["faces"][study.selected]),
    }
    has_faces = bool(study.meta.get("face_detector"))
    row: dict = {"num_images": study.num_images, "num_selected": len(study.selected),
                 "num_delete_set": len(deleted), "delete_mode": study.delete_mode,
                 "fraction": study.meta["settings"]["fraction"], "num_pairs": study.meta["num_pairs"],
                 "covariance": covariance.value, "reference_images": reference.num_images,
                 "network": study.meta.get("network")}  # the generator file and its sha256, when recorded
    for suffix, (features, faces) in sets.items():
        row[f"FID{suffix}"] = fid_against(features, reference, covariance)
        row[f"face_rate{suffix}"] = float(np.mean(faces)) if has_faces else math.nan
    row.update(selected_attribution(study, reference, covariance))
    return row


def selected_attribution(study: Study, reference: Statistics, covariance: Covariance | str) -> dict:
    """Each selected image's exact leave-one-out ΔFID in the N generated images (fidlens.metrics.attribution).

    Why: it says whether the images the pairs rule selects are the ones FID itself dislikes
    (rank 1 = removing it lowers FID the most). Added fields only; the table's columns stay.
    """
    from fidlens.metrics.attribution import attribute

    pool3 = study.arrays["pool3"]
    if len(pool3) < 3:
        return {}
    result = attribute(pool3, reference.mu, reference.sigma, covariance=Covariance.parse(covariance).value)
    ranks = result.ranks
    chosen = [int(i) for i in study.selected]
    return {"selected_delta_fid": [{"index": i, "delta_fid": float(result.delta_fid[i]), "rank": int(ranks[i])}
                                   for i in chosen],
            "selected_delta_fid_mean": float(np.mean(result.delta_fid[chosen])) if chosen else math.nan,
            "delta_fid_definition": "FID(N images without the image) - FID(N images), exact; rank 1 of N = most "
                                    "negative (removing it lowers FID the most)"}


def write_row(row: dict, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(row, indent=2, allow_nan=True))


def table_rows(rows: dict[str, dict], published: dict[str, dict | None]) -> list[dict]:
    """Rows for the CSV: ours, then the published value of each FID column (empty when none)."""
    out = []
    for model, row in rows.items():
        line = {"model": model, **{k: row[k] for k in ("generator", "num_images", "num_selected",
                                                         "delete_mode", "num_delete_set", "covariance")
                                   if k in row}}
        for column in FID_COLUMNS:
            line[column] = round(row[column], 4)
        for column in FACE_COLUMNS:
            line[column] = "" if math.isnan(row[column]) else round(row[column], 4)
        values = published.get(model) or {}
        for column, key in PUBLISHED_KEYS.items():
            line[f"published_{column}"] = values.get(key, "")
        out.append(line)
    return out


def write_csv(lines: list[dict], path: str | os.PathLike) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(lines[0]))
    writer.writeheader()
    writer.writerows(lines)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buffer.getvalue())


def _cell(ours: float, theirs: object) -> str:
    return f"{ours:.2f}" if theirs in ("", None) else f"{ours:.2f} ({float(theirs):.2f})"


def render_markdown(lines: list[dict], *, face_detector: str | None) -> str:
    """A Markdown Table 2: 'ours (published)' where the paper has the model, then face rates."""
    head = "| model | N | n | delete | " + " | ".join(FID_COLUMNS) + " | faces: full / replace / delete |"
    rule = "|" + "---|" * (5 + len(FID_COLUMNS))
    body = []
    for line in lines:
        cells = [_cell(line[c], line[f"published_{c}"]) for c in FID_COLUMNS]
        faces = " / ".join("–" if line[c] == "" else f"{100 * line[c]:.1f}%" for c in FACE_COLUMNS[:3])
        delete = f"{line['delete_mode']} ({line['num_delete_set']})"
        body.append(f"| {line['model']} | {line['num_images']} | {line['num_selected']} | {delete} | "
                    + " | ".join(cells) + f" | {faces} |")
    notes = [
        "",
        "Values in parentheses are the published ones (Table 2 of the pairs study) where the model is the paper's.",
        "FID_Replace: selected images swapped for their w′ = w + mean(W_good) − mean(W_bad) images; "
        "FID_Delete: selected images removed (shrink) or removed and refilled from further latents (refill); "
        "FID_Sub_Good / FID_Sub_Bad: the n replacements / the n selected images alone.",
        "Selection: the n images with the smallest d_i = ‖w_i − mean(W_bad)‖ − ‖w_i − mean(W_good)‖ "
        "(the formula; the study's text says the opposite direction).",
        f"Face detector: {face_detector}" if face_detector else "Face-presence rate not measured (no face detector).",
    ]
    return "\n".join([head, rule, *body, *notes]) + "\n"
