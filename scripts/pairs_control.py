"""Table 2's five FIDs again in a second, independent feature space (control_fids.csv, control_row.json).

The study's images are rendered again from its saved latents and measured with the control detector;
the reference images the same way (`fidlens.studies.pairs.control`). The output names the detector.
"""

import json

import torch  # noqa: F401  (loaded first, so the job context hands torch the rule's threads)

from fidlens.core.atomic import write_text_atomic
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import ExtractionSettings, compute_features
from fidlens.generators.load import load_generator
from fidlens.studies.pairs.control import control_row, write_control_csv
from fidlens.studies.pairs.study_file import Study
from fidlens.workflow.jobs import job


def main(study: str, network: str, reference: str, control: dict, table: str, row_out: str) -> None:
    detector = load_detector(control["detector"], device=pick_device(control["device"], log=print))
    G = load_generator(network, which=control["which"]).to(detector.device)
    reference_features = compute_features(reference, detector,
                                          settings=ExtractionSettings(batch_size=control["batch_size"],
                                                                      cache=control["cache"])).features
    row = control_row(Study.load(study), G, detector, reference_features, covariance=control["covariance"],
                      batch_size=control["batch_size"])
    write_control_csv(row, table)
    write_text_atomic(row_out, json.dumps(row, indent=2, allow_nan=True) + "\n")


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        main(i.study, i.network, i.reference, p.control, snakemake.output.table, snakemake.output.row)
