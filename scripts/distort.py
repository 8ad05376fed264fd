"""Write one disturbed copy of the comparison set (one distortion, one strength)."""

from fidlens.studies.demo import write_distorted_set
from fidlens.workflow.jobs import job


def main(src_dir: str, out_dir: str, kind: str, strength: float, seed: int) -> None:
    count = write_distorted_set(src_dir, out_dir, kind, strength, seed)
    print(f"{kind} at strength {strength}: wrote {count} images to {out_dir}")


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.images, snakemake.output[0], p.kind, p.strength, p.seed)
