"""One pair's attention maps (absolute weighting) and the FID change of swapping bad for good.

Writes the figure, its numbers (strict JSON) and both raw 8×8 maps with their shared scale (.npz).
"""

from pathlib import Path

from fidlens.core.errors import FidlensError
from fidlens.detectors.features import pick_device
from fidlens.generators.load import load_generator
from fidlens.studies.heatmap import FidSensitivity, describe_setup
from fidlens.detectors.inception_weights import load_inception
from fidlens.studies.pairs.maps import (
    explain_pair,
    pair_numbers,
    save_pair_figure,
    swap_change,
    write_pair_maps,
)
from fidlens.studies.pairs.spec import load_pairs
from fidlens.workflow.provenance import record_job_provenance
from fidlens.core.rawdata import strict_json, write_json
from fidlens.metrics.stats import Statistics
from fidlens.workflow.jobs import logged


def main(network: str, weights: str, pairs: str, generated_stats: str, reference: str, figure: str, numbers: str,
         maps: str, stem: str, sampling: dict, which: str, device: str, log: str, threads: int) -> None:
    with logged(log, threads):
        chosen = load_pairs(pairs)
        pair = next((p for p in chosen.pairs if p.stem == stem), None)
        if pair is None:
            raise FidlensError(f"{pairs} has no pair named {stem}")
        detector = load_inception(weights, device=pick_device(device, log=print))
        generated = Statistics.load(generated_stats)
        ref = Statistics.load(reference)
        sensitivity = FidSensitivity(detector, ref, generated, weighting="absolute")
        G = load_generator(network, which=which).to(sensitivity.device)
        bad, good = explain_pair(sensitivity, G, pair, chosen.probe_step, **sampling)
        save_pair_figure(bad, good, pair, figure, title=f"{G.label} · pair {pair.bad} / {pair.good}",
                         subtitle=describe_setup(sensitivity, ref, generated))
        result = {"bad": str(pair.bad), "good": str(pair.good), "note": pair.note,
                  "fid_with_bad": bad.fid_with_image, "fid_with_good": good.fid_with_image,
                  "swap_change": swap_change(bad, good), "generated_images": generated.num_images,
                  "weighting": "absolute", **pair_numbers(bad, good), "maps_file": Path(maps).name}
        write_pair_maps(bad, good, maps)
        print(strict_json(result), end="")
        write_json(numbers, result)


if __name__ == "__main__":
    wc = snakemake.wildcards
    main(snakemake.input.network, snakemake.input.weights, snakemake.input.pairs, snakemake.input.generated,
         snakemake.input.reference, snakemake.output.figure, snakemake.output.numbers, snakemake.output.maps,
         f"pair_{wc.bad}_{wc.good}", snakemake.params.sampling, snakemake.params.which, snakemake.params.device,
         snakemake.log[0], snakemake.threads)
    record_job_provenance(snakemake)
