"""One model's pairs study: generate once, select by d_i, replace, (refill); save by index."""

import numpy as np

from fidlens.assets.registry import network_identity
from fidlens.detectors.base import DetectorSpec, spec_for_job
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.generators.load import load_generator
from fidlens.metrics.stats import Statistics
from fidlens.studies.pairs.spec import load_pairs
from fidlens.studies.pairs.study import StudySettings, run_study, study_meta, write_selection_csv
from fidlens.studies.pairs.study_file import Study, save_study
from fidlens.workflow.jobs import job


def main(network: str, detector_spec: DetectorSpec, pairs: str, study_out: str, selection_out: str, generated_out: str,
         settings: dict, face_detector: bool, which: str, device: str) -> None:
    detector = load_detector(detector_spec, device=pick_device(device, log=print))
    G = load_generator(network, which=which).to(detector.device)
    chosen = load_pairs(pairs)
    study_settings = StudySettings.from_mapping(settings)
    faces = None
    if face_detector:
        from fidlens.studies.pairs.faces import FaceDetector

        faces = FaceDetector()
        print(f"face-presence rate: {faces.describe()}")
    arrays = run_study(G, detector, chosen, study_settings, has_face=faces.has_face if faces else None)
    meta = study_meta(G, detector, chosen, study_settings, faces.describe() if faces else None)
    meta["network"] = network_identity(network)  # which file (name, sha256) made the study's images
    save_study(arrays, meta, study_out)
    study = Study(arrays, meta)
    write_selection_csv(study, selection_out)
    # The N images' statistics (unbiased, as the heatmaps' rank-1 update needs), once for every pair map.
    Statistics.from_features(arrays["pool3"], covariance="unbiased", meta=meta).save(generated_out)
    d = arrays["d"]
    print(f"{len(chosen.pairs)} pairs; selected {len(study.selected)} of {study.num_images} images "
          f"(d from {d.min():.4f} to {d[study.selected].max():.4f}; median of all {np.median(d):.4f})")


if __name__ == "__main__":
    out, p = snakemake.output, snakemake.params
    with job(snakemake):
        main(snakemake.input.network, spec_for_job(snakemake), snakemake.input.pairs, out.study, out.selection,
             out.generated, p.settings, p.face_detector, p.which, p.device)
