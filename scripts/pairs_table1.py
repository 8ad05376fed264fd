"""Table 1 of the pairs study (pairs per model, ours beside the published count): CSV and Markdown."""

from pathlib import Path

from fidlens.core.atomic import atomic_path
from fidlens.studies.pairs.table1 import render_table1, table1_rows, write_table1_csv
from fidlens.workflow.jobs import job


def main(pairs_files: list[str], models: list[str], networks: dict, published: dict, csv_out: str,
         md_out: str) -> None:
    rows = table1_rows(dict(zip(models, pairs_files, strict=True)), networks, published)
    write_table1_csv(rows, csv_out)
    markdown = render_table1(rows)
    with atomic_path(md_out) as tmp:
        Path(tmp).write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(list(snakemake.input), p.models, p.networks, p.published, snakemake.output.csv, snakemake.output.markdown)
