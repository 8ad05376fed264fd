"""One resampling run (one pool, one feature mode): optimise weights, evaluate, log, draw figures."""

from fidlens.core.atomic import write_text_atomic
from fidlens.core.jsonio import write_json
from fidlens.core.progress import note
from fidlens.detectors.base import DetectorSpec
from fidlens.detectors.features import pick_device
from fidlens.generators.sampling import Sampling
from fidlens.studies.resampling.modes import Mode
from fidlens.studies.resampling.pool import GeneratedPool, ImagePool, attach_clip, bank_from_files
from fidlens.studies.resampling.run import (
    ResamplingRun,
    ResamplingSettings,
    RunInputs,
    require_logits,
)
from fidlens.workflow.jobs import job


def main(reals: list[str], real_images: list[str], pool: list[str], pool_images: list[str], pool_labels: list[str],
         generator: dict | None, mode: str, settings: dict, clip_weights: str | None, detector: str, outdir: str,
         device: str, published: dict | None = None) -> None:
    run_mode = Mode.parse(mode)
    real_bank = bank_from_files(reals)
    cand_bank = bank_from_files(pool, labels=pool_labels if generator is None else None)
    skipped = require_logits(run_mode, real_bank, cand_bank, detector_name=detector)
    if skipped:
        note(skipped)
        write_json(f"{outdir}/summary.json", {"mode": run_mode.tag, "skipped": skipped, "sentence": skipped,
                                              "published": published})
        write_text_atomic(f"{outdir}/log.csv", f"# {skipped}\n")
        return
    real_pool = ImagePool(real_images)
    if generator is None:
        candidates = ImagePool(pool_images)
    else:
        candidates = GeneratedPool(generator["network"], generator["num_images"], generator["latent_seed"],
                                   Sampling.from_mapping(generator["sampling"]), which=generator["which"])
    torch_device = pick_device(device, log=print)
    clip_skip = attach_clip(real_bank, cand_bank, clip_weights, real_pool, candidates, device=str(torch_device))
    inputs = RunInputs(run_mode, real_bank, cand_bank, clip_skip_reason=clip_skip, candidate_image=candidates,
                       description={"pool": "+".join(pool_labels) if generator is None else generator["name"],
                                    "reals": "+".join(real_images), "detector": detector})
    # one line per evaluation in the log and on the console: the job is long and otherwise silent there
    ResamplingRun(inputs, ResamplingSettings(**settings), outdir, device=torch_device,
                  log=lambda message: note(message, tag=outdir), published=published).run()


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake, record=[p.outdir]):  # the run's folder holds its figures and CSVs beside log.csv
        detector = p.detector if isinstance(p.detector, str) else DetectorSpec.from_any(p.detector).record_name()
        main(list(i.reals), p.real_images, list(i.pool), p.pool_images, p.pool_labels, p.generator, p.mode,
             p.settings, p.clip_weights, detector, p.outdir, p.device, p.published)
