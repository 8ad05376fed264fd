"""The pairs of one model: the user's YAML checked and copied, or picked by the demo's face-detector rule."""

from fidlens.detectors.features import pick_device
from fidlens.generators.load import load_generator
from fidlens.generators.sampling import Sampling
from fidlens.studies.pairs.spec import load_pairs
from fidlens.workflow.jobs import job


def main(network: str, pairs: str | None, out: str, auto: dict, sampling: dict, which: str, device: str) -> None:
    if pairs is not None:
        chosen = load_pairs(pairs)
        print(f"{len(chosen.pairs)} pairs read from {pairs} (probe step {chosen.probe_step})")
    else:
        from fidlens.studies.pairs.auto import choose_pairs_by_faces
        from fidlens.studies.pairs.faces import FaceDetector

        faces = FaceDetector()
        G = load_generator(network, which=which).to(pick_device(device, log=print))
        print(f"choosing pairs automatically with {faces.describe()}")
        chosen = choose_pairs_by_faces(G, faces.score, device=next(G.buffers()).device, **auto,
                                       sampling=Sampling.from_mapping(sampling))
        chosen.model = G.label
        print(chosen.rule)
    for pair in chosen.pairs:
        print(f"  bad {pair.bad} → good {pair.good}" + (f"  ({pair.note})" if pair.note else ""))
    chosen.save(out)


if __name__ == "__main__":
    p = snakemake.params
    with job(snakemake):
        main(snakemake.input.network, snakemake.input.get("pairs"), snakemake.output[0], p.auto, p.sampling, p.which,
             p.device)
