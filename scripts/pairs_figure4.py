"""The pairs study's Fig. 4: the selected bad images (top) above their w′ replacements (bottom)."""

from fidlens.detectors.features import pick_device
from fidlens.generators.load import load_generator
from fidlens.studies.pairs.figure4 import figure4_images, figure4_indices, write_figure4
from fidlens.studies.pairs.study_file import Study
from fidlens.workflow.jobs import job


def main(network: str, study_path: str, png: str, table: str, count: int, which: str, device: str) -> None:
    study = Study.load(study_path)
    torch_device = pick_device(device, log=print)
    G = load_generator(network, which=which).to(torch_device)
    indices = figure4_indices(study, count)
    top, bottom = figure4_images(G, study, indices, device=torch_device)
    write_figure4(study, indices, top, bottom, png, table)
    print(f"Fig. 4: {len(indices)} of {len(study.selected)} selected images and their replacements -> {png}")


if __name__ == "__main__":
    i, o, p = snakemake.input, snakemake.output, snakemake.params
    with job(snakemake):
        main(i.network, i.study, o.figure, o.table, p.images, p.which, p.device)
