"""One resampling run (one pool, one feature mode): optimise weights, evaluate, log, draw figures."""

from fidlens.assets.registry import network_identity
from fidlens.core.atomic import write_text_atomic
from fidlens.core.jsonio import write_json
from fidlens.core.progress import note
from fidlens.detectors.base import DetectorSpec
from fidlens.detectors.features import pick_device
from fidlens.generators.sampling import Sampling
from fidlens.studies.resampling.control import CLIP_SPACE, control_space
from fidlens.studies.resampling.modes import Mode
from fidlens.studies.resampling.pool import (
    GeneratedPool,
    ImagePool,
    bank_from_files,
    control_from_files,
)
from fidlens.studies.resampling.run import (
    ResamplingRun,
    ResamplingSettings,
    RunInputs,
    require_logits,
)
from fidlens.workflow.jobs import job


def main(reals: list[str], real_images: list[str], pool: list[str], pool_images: list[str], pool_labels: list[str],
         generator: dict | None, mode: str, settings: dict, control: dict | None, detector: str, outdir: str,
         device: str, published: dict | None = None, real_control: list[str] = (), pool_control: list[str] = (),
         real_label: str | None = None) -> None:
    """CONTROL: the control detector {name, weights} (None: none); REAL_CONTROL / POOL_CONTROL: its feature
    files of the reals and of the pool, made once (rules/resampling.smk)."""
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
    if generator is None:
        candidates = ImagePool(pool_images)
    else:
        candidates = GeneratedPool(generator["network"], generator["num_images"], generator["latent_seed"],
                                   Sampling.from_mapping(generator["sampling"]), which=generator["which"])
    torch_device = pick_device(device, log=print)
    skip = control_from_files(real_bank, cand_bank, control, list(real_control), list(pool_control))
    space = control_space(control["name"], control["weights"]) if control else CLIP_SPACE
    description = {"pool": "+".join(pool_labels) if generator is None else generator["name"],
                   "reals": real_label or "+".join(real_images), "detector": detector}
    if generator is not None:  # which network file made the pool (the release's snapshot or another)
        description["network"] = network_identity(generator["network"])
    inputs = RunInputs(run_mode, real_bank, cand_bank, clip_skip_reason=skip, candidate_image=candidates,
                       description=description, control=space)
    # one line per evaluation in the log and on the console: the job is long and otherwise silent there
    ResamplingRun(inputs, ResamplingSettings(**settings), outdir, device=torch_device,
                  log=lambda message: note(message, tag=outdir), published=published).run()


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake, record=[p.outdir]):  # the run's folder holds its figures and CSVs beside log.csv
        detector = p.detector if isinstance(p.detector, str) else DetectorSpec.from_any(p.detector).record_name()
        main(list(i.reals), p.real_images, list(i.pool), p.pool_images, p.pool_labels, p.generator, p.mode,
             p.settings, p.control, detector, p.outdir, p.device, p.published,
             list(i.get("real_control", [])), list(i.get("pool_control", [])), p.get("real_label"))
