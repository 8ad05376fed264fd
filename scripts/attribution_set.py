"""Exact leave-one-out ΔFID of every image of an image set: ranking.csv, attribution.json, grid.png.

No heatmaps: an image set has no generator this run knows (the grid's footer says so). The steps
are `fidlens.studies.attribution_run.run_set_attribution`; generated sets: attribution_generated.py.
"""

from fidlens.studies.attribution_run import run_set_attribution
from fidlens.workflow.jobs import job


def main(features: str, reference: str, images: str, outputs: dict, params: dict) -> None:
    run_set_attribution(features, reference, outputs, set_label=params["label"], top=params["top"],
                        covariance=params["covariance"], images=images)


if __name__ == "__main__":
    i = snakemake.input
    with job(snakemake):
        main(i.features, i.reference, i.images, dict(snakemake.output.items()), snakemake.params.attribution)
