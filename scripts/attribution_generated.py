"""Exact leave-one-out ΔFID of every image of a generated set, with FID sensitivity heatmaps in its grid.

The images are re-rendered from the latents of the set's features (rows of RandomState(latent_seed));
the heatmaps are the heatmap study's (`fidlens.studies.heatmap`). Steps: `run_set_attribution`.
"""

import torch  # noqa: F401  (loaded first, so the job context hands torch the rule's threads)

from fidlens.detectors.base import spec_for_job
from fidlens.studies.attribution_run import GeneratedSet, run_set_attribution
from fidlens.workflow.jobs import job


def main(features: str, reference: str, outputs: dict, params: dict, detector_spec) -> None:
    gen = params["generated"]
    generated = GeneratedSet(network=gen["network"], num_images=gen["num_images"], latent_seed=gen["latent_seed"],
                             sampling=gen["sampling"], which=gen["which"])
    run_set_attribution(features, reference, outputs, set_label=params["label"], top=params["top"],
                        covariance=params["covariance"], generated=generated, detector_spec=detector_spec,
                        device=params["device"], weighting=params["weighting"], heatmaps=params["heatmaps"])


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        spec = spec_for_job(snakemake) if p.attribution["heatmaps"] else p.attribution["detector"]
        main(i.features, i.reference, dict(snakemake.output.items()), p.attribution, spec)
