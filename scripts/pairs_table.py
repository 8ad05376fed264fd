"""Table 2 over every configured model: CSV, and Markdown with the published values beside ours."""

import json
from pathlib import Path

from fidlens.core.atomic import atomic_path
from fidlens.studies.pairs.table import render_markdown, table_rows, write_csv
from fidlens.workflow.jobs import job


def main(rows: list[str], models: list[str], published: dict, csv_out: str, md_out: str) -> None:
    loaded = {model: json.loads(Path(path).read_text()) for model, path in zip(models, rows)}
    lines = table_rows(loaded, published)
    write_csv(lines, csv_out)
    detectors = {row.get("face_detector") for row in loaded.values()} - {None}
    markdown = render_markdown(lines, face_detector="; ".join(sorted(detectors)) or None)
    with atomic_path(md_out) as tmp:
        Path(tmp).write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    with job(snakemake):
        main(list(snakemake.input), snakemake.params.models, snakemake.params.published, snakemake.output.csv,
             snakemake.output.markdown)
