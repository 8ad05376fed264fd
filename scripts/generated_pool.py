"""A generated resampling pool: generated once on the job's device, measured by every detector of the run."""

from fidlens.assets.registry import network_identity
from fidlens.detectors.base import DetectorSpec
from fidlens.detectors.features import pick_device
from fidlens.detectors.registry import load_detector
from fidlens.extraction.pipeline import GenerationSettings
from fidlens.generators.load import load_generator
from fidlens.studies.resampling.pool_features import featurise_generated_pool
from fidlens.workflow.jobs import job


def main(network: str, detectors: dict, weights: dict, outputs: dict, generation: dict, which: str, device: str,
         batch_size: int) -> None:
    """DETECTORS: key → {name, weights}; WEIGHTS: key → the declared weights file (networks only); OUTPUTS: key → file."""
    torch_device = pick_device(device, log=print)
    loaded = {key: load_detector(DetectorSpec(spec["name"], str(weights.get(key) or spec["weights"])),
                                 device=torch_device)
              for key, spec in detectors.items()}
    G = load_generator(network, which=which).to(torch_device)
    identity = network_identity(network)
    sets = featurise_generated_pool(G, loaded, GenerationSettings.from_mapping(generation), generator_path=network,
                                    generator_sha256=identity["sha256"], which=which, batch_size=batch_size)
    for key, features in sets.items():
        features.meta["network"] = identity
        features.save(outputs[key])
        print(f"{features.features.shape[0]} pool images -> {outputs[key]} ({loaded[key].weights_name})")


if __name__ == "__main__":
    i, p = snakemake.input, snakemake.params
    with job(snakemake):
        main(i.network, p.pool["detectors"], {"inception": i.weights},  # the control's file (if any) is its spec's
             {"inception": snakemake.output.inception, "control": snakemake.output.control}, p.pool["generation"],
             p.pool["which"], p.pool["device"], p.pool["batch_size"])
