# Helpers shared by every .smk file here: config validation and path lookups.

import os

from snakemake.utils import validate

from fidlens.core.errors import FidlensError
from fidlens.data.manifest import check_source, refresh_manifest
from fidlens.workflow.jobs import demo_problem, entry_problem, refuse, schema_problem

# A bad value stops the run here, before any job, with one line naming its key (`error: config
# device: ...`, exit status 2); validate() then fills in the defaults the later checks rely on.
_problem = schema_problem(config, os.path.join(workflow.basedir, "config", "schema.yaml"))
if _problem:
    refuse(_problem)
validate(config, "../config/schema.yaml")
_problem = demo_problem(config)
if _problem:
    refuse(_problem)


def checked(section, name):
    """Config entry SECTION.NAME once the names in it point at something; else one line, exit 2.

    Called where the DAG first needs the entry, so a study no requested target needs may stay
    half-edited.
    """
    if name in config.get(section, {}):
        problem = entry_problem(config, section, name)
        if problem:
            refuse(problem)
    return config[section][name]


DEMO = config["demo"]
DEMO_SPLITS = {
    "reference": DEMO["reference_subjects"],
    "comparison": DEMO["comparison_subjects"],
}


def demo_distorted_sets():
    """Names of the distorted comparison sets: blur1..blur4, noise1..., occlusion1..."""
    return [
        f"{kind}{i}"
        for kind, strengths in DEMO["distortions"].items()
        for i in range(1, len(strengths) + 1)
    ]


def demo_comparison_sets():
    return ["comparison"] + demo_distorted_sets()


def distortion_params(wildcards):
    strengths = DEMO["distortions"][wildcards.kind]
    level = int(wildcards.level)
    if not 1 <= level <= len(strengths):
        raise ValueError(f"{wildcards.kind} has levels 1..{len(strengths)}, not {level}")
    return strengths[level - 1]


def inception_weights_path():
    """The weights file the feature rules read: fetched default, a downloaded URL, or a path."""
    spec = config["inception_weights"]
    if spec == "default":
        return "resources/weights/default_1.pt"
    if spec.startswith(("http://", "https://")):
        return f"resources/weights/{spec.rsplit('/', 1)[-1]}"
    return spec


def zip_source(wildcards):
    return config["zips"][wildcards.name]["source"]


def zip_options(wildcards):
    options = config["zips"][wildcards.name]
    return {"resolution": options.get("resolution"), "resize_filter": options.get("resize_filter", "lanczos")}


def images_for(wildcards):
    """An image set's location: a user dataset from the config, else a demo set built here."""
    user = config.get("datasets", {})
    if wildcards.dataset in user:
        return user[wildcards.dataset]["path"]
    return f"results/data/{wildcards.dataset}"


_REFRESHED = {}
_MADE_HERE = {}


def made_here(path):
    """Whether a rule of this workflow can make PATH (a demo set, a built ZIP, a placed dataset)."""
    if path not in _MADE_HERE:
        _MADE_HERE[path] = any(rule.is_producer(path) for rule in workflow.rules)
    return _MADE_HERE[path]


def as_source(path):
    """An image folder or ZIP as a job's input. Its content speaks through its manifest, so the
    folder's own mtime (moved by any file added next to the images) is ignored: ancient().
    Not so for a folder made by this workflow, since a rerun of its maker must still rerun what
    reads it, and Snakemake does not pass a rerun on through an ancient() input.
    """
    return path if made_here(path) else ancient(path)


def refreshed_manifest(source, manifest, what):
    """MANIFEST, first brought up to date with SOURCE's content while the DAG is built.

    An image edited in place (even with its old mtime put back) leaves its folder's mtime alone,
    so Snakemake alone would call the stale results up to date. The manifest (names, sizes,
    sha256; see fidlens.data.manifest for the cost and the promise) is rewritten here only when the
    content changed, so its mtime moves exactly then and reruns exactly the jobs that declare it.
    A manifest not made yet is left to the manifest rules (only listed here, so an empty folder
    is refused now); so is a source an upstream job builds. A source that nothing can make, or
    one that is not an image set, ends the run here with one line that starts with WHAT (the
    config key, or the demo set).
    """
    if (source, manifest) not in _REFRESHED:
        try:
            if os.path.exists(manifest) and os.path.exists(source):
                refresh_manifest(source, manifest)
            elif os.path.exists(source):
                check_source(source)
            elif not made_here(source):
                refuse(f"{what}: {source} does not exist")
        except FidlensError as exc:
            refuse(f"{what}: {exc}")
        _REFRESHED[(source, manifest)] = True
    return manifest


def image_manifest(wildcards):
    """The content manifest of an image set (a configured dataset or a demo set)."""
    name = wildcards.dataset
    what = f"config datasets.{name}.path" if name in config.get("datasets", {}) else f"demo set {name}"
    return refreshed_manifest(images_for(wildcards), f"results/manifests/{name}.json", what)


def image_set_manifest(name):
    return image_manifest(type("W", (), {"dataset": name})())


def source_folder(wildcards):
    """Folders read by rules that build image sets: the ORL faces (`orl`), a ZIP's source (`zip-NAME`)."""
    if wildcards.source == "orl":
        return DEMO["orl_dir"]
    return config["zips"][wildcards.source.removeprefix("zip-")]["source"]


def source_manifest(source):
    what = "config demo.orl_dir" if source == "orl" else f"config zips.{source.removeprefix('zip-')}.source"
    path = f"results/manifests/sources/{source}.json"
    return refreshed_manifest(source_folder(type("W", (), {"source": source})()), path, what)


def orl_manifest(wildcards):
    return source_manifest("orl")


def zip_source_manifest(wildcards):
    return source_manifest(f"zip-{wildcards.name}")


def max_images_for(wildcards):
    return config.get("datasets", {}).get(wildcards.dataset, {}).get("max_images")


def all_targets():
    targets = []
    if DEMO["enabled"]:
        targets += ["results/tables/fid_demo.csv", "results/figures/fid_vs_distortion.png"]
    targets += expand("results/stats/{dataset}.npz", dataset=list(config.get("datasets", {})))
    targets += expand("results/zips/{name}.zip", name=list(config.get("zips", {})))
    targets += heatmap_targets()
    targets += resampling_targets()
    targets += pairs_targets()
    return targets


GENERATORS = config.get("generators", {})
HEATMAPS = config.get("heatmaps", {})


def generator_network(wildcards):
    """The generator file: the fitted demo model, or the configured .pkl/.pt path."""
    if wildcards.generator in HEATMAPS:
        checked("heatmaps", wildcards.generator)
    network = GENERATORS[wildcards.generator]["network"]
    return f"results/generators/{wildcards.generator}.pt" if network == "ppca-demo" else network


def demo_fit_images(wildcards):
    checked("generators", wildcards.generator)
    return images_for(type("W", (), {"dataset": GENERATORS[wildcards.generator]["fit_on"]})())


def demo_fit_manifest(wildcards):
    return image_set_manifest(GENERATORS[wildcards.generator]["fit_on"])


def generation_settings(wildcards):
    options = GENERATORS[wildcards.generator]
    return {
        "num_images": int(wildcards.n),
        "latent_seed": int(wildcards.z),
        "truncation_psi": options["truncation_psi"],
        "truncation_cutoff": options["truncation_cutoff"],
        "noise_mode": options["noise_mode"],
        "class_idx": options["class_idx"],
    }


def sampling_settings(wildcards):
    settings = generation_settings(type("W", (), {"generator": wildcards.generator, "n": 0, "z": 0})())
    return {k: v for k, v in settings.items() if k not in ("num_images", "latent_seed")}


def generated_stats(wildcards):
    study = HEATMAPS[wildcards.generator]
    return f"results/generated/{wildcards.generator}/stats_n{study['num_generated']}_z{study['latent_seed']}.npz"


def heatmap_reference_stats(wildcards):
    checked("heatmaps", wildcards.generator)
    return f"results/stats/{HEATMAPS[wildcards.generator]['reference']}.npz"


def heatmap_targets():
    targets = []
    for generator, study in HEATMAPS.items():
        targets += [f"results/heatmaps/{generator}/seed{seed:04d}.png" for seed in study["seeds"]]
        targets += [f"results/heatmaps/{generator}/grid_{f}_{r}x{c}.png" for f, r, c in study["grids"]]
    return targets


RESAMPLING = config.get("resampling", {})
RESAMPLING_SETTINGS = ("iterations", "lr", "eval_every", "eval_samples", "eval_repeats", "seed", "chunk_size",
                       "kid_subsets", "kid_subset_size")


def resampling_generator(run):
    """The generated pool of a run as a dict the script understands, or None for image-set pools."""
    spec = RESAMPLING[run].get("generator")
    if not spec:
        return None
    wc = type("W", (), {"generator": spec["name"], "n": spec["num_images"], "z": spec["latent_seed"]})()
    return {"name": spec["name"], "network": generator_network(wc), "num_images": spec["num_images"],
            "latent_seed": spec["latent_seed"], "sampling": sampling_settings(wc),
            "which": GENERATORS[spec["name"]]["which"]}


def resampling_pool_features(wildcards):
    run = RESAMPLING[wildcards.run]
    spec = run.get("generator")
    if spec:
        return [f"results/generated/{spec['name']}/features_n{spec['num_images']}_z{spec['latent_seed']}.npz"]
    return [f"results/features/{name}.npz" for name in run["pool"]]


def resampling_inputs(wildcards):
    run = checked("resampling", wildcards.run)
    inputs = {"reals": [f"results/features/{run['reals']}.npz"], "pool": resampling_pool_features(wildcards)}
    spec = run.get("generator")
    if spec:
        inputs["network"] = generator_network(type("W", (), {"generator": spec["name"]})())
    if run.get("clip_weights"):
        inputs["clip"] = run["clip_weights"]  # a declared input: the download rule fetches it when missing
    return inputs


def resampling_params(wildcards):
    run = RESAMPLING[wildcards.run]
    return {
        "real_images": [images_for(type("W", (), {"dataset": run["reals"]})())],
        "pool_images": [images_for(type("W", (), {"dataset": d})()) for d in run.get("pool", [])],
        "pool_labels": list(run.get("pool", [])),
        "generator": resampling_generator(wildcards.run),
        "settings": {k: run[k] for k in RESAMPLING_SETTINGS if k in run},
        "clip_weights": run.get("clip_weights"),
    }


def resampling_targets():
    return [f"results/resampling/{run}/{mode}/log.csv" for run, spec in RESAMPLING.items() for mode in spec["modes"]]


PAIRS = config.get("pairs", {})


def pairs_generator_network(wildcards):
    checked("pairs", wildcards.model)
    return generator_network(type("W", (), {"generator": PAIRS[wildcards.model]["generator"]})())


def pairs_file_inputs(wildcards):
    """The generator always; the user's pairs file too unless the automatic rule picks the pairs."""
    inputs = {"network": pairs_generator_network(wildcards)}
    if PAIRS[wildcards.model]["pairs"] != "auto":
        inputs["pairs"] = PAIRS[wildcards.model]["pairs"]
    return inputs


def pairs_sampling(wildcards):
    return sampling_settings(type("W", (), {"generator": PAIRS[wildcards.model]["generator"]})())


def pairs_which(wildcards):
    return GENERATORS[PAIRS[wildcards.model]["generator"]]["which"]


def pairs_study_settings(wildcards):
    study = PAIRS[wildcards.model]
    keys = ("num_images", "latent_seed", "fraction", "delete_mode")
    return {**{k: study[k] for k in keys}, **pairs_sampling(wildcards), "batch_size": config["batch_size"]}


def pairs_reference_stats(wildcards):
    checked("pairs", wildcards.model)
    return f"results/stats/{PAIRS[wildcards.model]['reference']}.npz"


def pair_map_files(wildcards):
    """Every pair's figure; the pairs are known once the pairs file exists (a checkpoint)."""
    from fidlens.studies.pairs.spec import load_pairs

    pairs = load_pairs(checkpoints.pairs_file.get(model=wildcards.model).output[0])
    return [f"results/pairs/{wildcards.model}/{pair.stem}.png" for pair in pairs.pairs]


def pairs_published():
    return {model: study.get("published") for model, study in PAIRS.items()}


def pairs_targets():
    if not PAIRS:
        return []
    targets = ["results/tables/pairs_table2.csv", "results/tables/pairs_table2.md"]
    targets += [f"results/pairs/{model}/maps.md" for model, study in PAIRS.items() if study["maps"]]
    return targets
