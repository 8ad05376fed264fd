"""An index of one model's pair maps: each pair, its FIDs and the swap's change, linked to its figure."""

from fidlens.studies.pairs.maps_index import write_maps_index
from fidlens.workflow.jobs import job


def main(figures: list[str], out: str, csv_out: str) -> None:
    print(write_maps_index(figures, out, csv_out))


if __name__ == "__main__":
    with job(snakemake):
        main(list(snakemake.input), snakemake.output.markdown, snakemake.output.csv)
