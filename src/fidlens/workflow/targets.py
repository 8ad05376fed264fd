"""Config → targets: every path, input and parameter the workflow derives from a config, in one tested place.

`Plan(config)` is built once from a checked config (`fidlens.workflow.config.prepare` has filled
the defaults); the rules ask it by plain names (`PLAN.generator_network("demo")`) through
one-line input functions, and the tests ask it the same questions instead of copying the rules.
Pure Python: no Snakemake, no torch.

Where things go:

- everything a run makes lies under ``results/RUN`` (logs under ``logs/RUN``), RUN being the
  config's `run` key, so two configs never write the same file;
- detector weights live in ``$FIDLENS_HOME/weights`` (`fidlens.assets.store.cache_dir`), where the
  CLI looks too, unless the config names a file;
- the feature cache is ``$FIDLENS_HOME/features``, shared with the CLI and by every run (it is
  keyed by content, so sharing is safe), unless the config's `feature_cache` says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from fidlens.assets.store import cache_dir
from fidlens.workflow.config import ConfigError, entry_problem, unknown
from fidlens.workflow.beyond_targets import BeyondTargets

# The file each detector reads when its config says `weights: default`, fetched into $FIDLENS_HOME/weights.
DEFAULT_WEIGHTS = {"inception": "default_1.pt", "clip": "ViT-B-32.pt"}
SAMPLING_KEYS = ("truncation_psi", "truncation_cutoff", "noise_mode", "class_idx")
RESAMPLING_SETTINGS = ("iterations", "lr", "eval_every", "eval_samples", "eval_repeats", "seed", "chunk_size",
                       "kid_subsets", "kid_subset_size")
PAIRS_STUDY_KEYS = ("num_images", "latent_seed", "fraction", "delete_mode")


def _raise(problem: str) -> NoReturn:
    raise ConfigError(problem)


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


@dataclass(frozen=True)
class ResamplingJob:
    """One resampling rule job: its inputs (named lists of files) and its params."""

    inputs: dict[str, Any]
    params: dict[str, Any]


class Plan(BeyondTargets):
    """What one config runs, and where each file of it lies.

    ``on_problem`` receives the one-line message of a config entry that points at nothing; the
    default raises `ConfigError`, the workflow passes `fidlens.workflow.config.refuse` (exit 2).
    ``home`` stands for ``$FIDLENS_HOME`` (read from the environment when not given).
    """

    def __init__(self, config: Mapping[str, Any], *, home: str | os.PathLike | None = None,
                 on_problem: Callable[[str], None] = _raise) -> None:
        self.config = config
        self.run: str = config["run"]
        self.results = f"results/{self.run}"
        self.logs = f"logs/{self.run}"
        self.benchmarks = f"{self.results}/benchmarks"
        self.home = Path(home) if home is not None else cache_dir()
        self.weights_dir = (self.home / "weights").as_posix()
        self.feature_cache = config.get("feature_cache") or (self.home / "features").as_posix()
        self.demo: Mapping[str, Any] = config["demo"]
        self.datasets: Mapping[str, Any] = config.get("datasets", {})
        self.generators: Mapping[str, Any] = config.get("generators", {})
        self.heatmaps: Mapping[str, Any] = config.get("heatmaps", {})
        self.resampling: Mapping[str, Any] = config.get("resampling", {})
        self.pairs: Mapping[str, Any] = config.get("pairs", {})
        self._on_problem = on_problem
        self._checked: set[tuple[str, str]] = set()
        self._resampling_runs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._dataset_sizes: dict[str, int] = {}

    # --- checks ---------------------------------------------------------------------------------

    def _problem(self, message: str) -> NoReturn:
        self._on_problem(message)
        raise ConfigError(message)  # an on_problem that returned: never go on with a bad entry

    def entry(self, section: str, name: str) -> Mapping[str, Any]:
        """Config entry SECTION.NAME once the names in it point at something (checked once)."""
        entries = self.config.get(section, {})
        if name not in entries:
            what = {"generators": "generator", "zips": "ZIP"}.get(section, f"{section} entry")
            self._problem(unknown(section, name, set(entries), what))
        if (section, name) not in self._checked:
            problem = entry_problem(self.config, section, name)
            if problem:
                self._problem(problem)
            self._checked.add((section, name))
        return entries[name]

    # --- weights and the detector -----------------------------------------------------------------

    def weights_file(self, spec: str, detector: str = "inception") -> str:
        """A weights setting as a file: `default` and URLs point into $FIDLENS_HOME/weights, a path stays."""
        if spec == "default":
            if detector not in DEFAULT_WEIGHTS:
                self._problem(f"config detector.weights: detector {detector!r} has no default weights; give a path")
            return f"{self.weights_dir}/{DEFAULT_WEIGHTS[detector]}"
        if _is_url(spec):
            return f"{self.weights_dir}/{spec.rsplit('/', 1)[-1]}"
        return spec

    def detector_name(self) -> str:
        return self.config["detector"]["name"]

    def weights_path(self) -> str:
        """The detector's weights file: a declared input of every rule that runs the detector."""
        return self.weights_file(self.config["detector"]["weights"], self.detector_name())

    def detector_params(self) -> dict[str, str]:
        """The `detector` param of the feature-type rules: the registry name and the weights file."""
        return {"name": self.detector_name(), "weights": self.weights_path()}

    def detector_label(self) -> str:
        """The weights' file name, as tables and captions name the detector (e.g. default_1.pt)."""
        return Path(self.weights_path()).name

    def configured_urls(self) -> dict[str, str]:
        """File name → URL of every weights URL in the config (a mirror the download rule then uses)."""
        specs = [self.config["detector"]["weights"]]
        specs += [run.get("clip_weights") or "" for run in self.resampling.values()]
        specs += [(run.get("control_detector") or {}).get("weights") or "" for run in self.resampling.values()]
        return {spec.rsplit("/", 1)[-1]: spec for spec in specs if _is_url(spec)}

    # --- image sets -----------------------------------------------------------------------------

    def demo_distorted_sets(self) -> list[str]:
        """Names of the distorted comparison sets: blur1, blur2, noise1, ..."""
        return [f"{kind}{i}" for kind, strengths in self.demo["distortions"].items()
                for i in range(1, len(strengths) + 1)]

    def demo_comparison_sets(self) -> list[str]:
        return ["comparison", *self.demo_distorted_sets()]

    def demo_feature_sets(self) -> list[str]:
        """The demo's headline sets, featurised by one job (rules/demo.smk): the detector is
        loaded once, not once per set, which is most of a 100-image set's cost on a CPU."""
        return ["reference", *self.demo_comparison_sets()] if self.demo["enabled"] else []

    def demo_subjects(self, split: str) -> list[int]:
        return list(self.demo[{"reference": "reference_subjects", "comparison": "comparison_subjects"}[split]])

    def distortion_strength(self, kind: str, level: int | str) -> float:
        strengths = self.demo["distortions"][kind]
        level = int(level)
        if not 1 <= level <= len(strengths):
            raise ValueError(f"{kind} has levels 1..{len(strengths)}, not {level}")
        return strengths[level - 1]

    def image_set_path(self, name: str) -> str:
        """An image set's location: a configured dataset's path, else a demo set this run builds."""
        if name in self.datasets:
            return self.datasets[name]["path"]
        return f"{self.results}/data/{name}"

    def image_set_what(self, name: str) -> str:
        """How messages name an image set: its config key, or the demo set."""
        return f"config datasets.{name}.path" if name in self.datasets else f"demo set {name}"

    def max_images(self, name: str) -> int | None:
        return self.datasets.get(name, {}).get("max_images")

    def manifest_path(self, name: str) -> str:
        return f"{self.results}/manifests/{name}.json"

    def source_folder(self, source: str) -> str:
        """Folders read by rules that build image sets: the ORL faces (`orl`), a ZIP's source (`zip-NAME`)."""
        if source == "orl":
            return self.demo["orl_dir"]
        return self.entry("zips", source.removeprefix("zip-"))["source"]

    def source_what(self, source: str) -> str:
        return "config demo.orl_dir" if source == "orl" else f"config zips.{source.removeprefix('zip-')}.source"

    def source_manifest_path(self, source: str) -> str:
        return f"{self.results}/manifests/sources/{source}.json"

    def features_path(self, name: str) -> str:
        return f"{self.results}/features/{name}.npz"

    def stats_path(self, name: str) -> str:
        return f"{self.results}/stats/{name}.npz"

    def zip_path(self, name: str) -> str:
        return f"{self.results}/zips/{name}.zip"

    def zip_options(self, name: str) -> dict[str, Any]:
        options = self.entry("zips", name)
        return {"resolution": options["resolution"], "resize_filter": options["resize_filter"],
                "source_resolution": options.get("source_resolution")}

    # --- the demo -------------------------------------------------------------------------------

    def demo_table(self) -> str:
        return f"{self.results}/tables/fid_demo.csv"

    def demo_figure(self) -> str:
        return f"{self.results}/figures/fid_vs_distortion.png"

    def demo_targets(self) -> list[str]:
        return [self.demo_table(), self.demo_figure()] if self.demo["enabled"] else []

    def fid_table_params(self) -> dict[str, Any]:
        return {"names": self.demo_comparison_sets(), "distortions": self.demo["distortions"],
                "kid": self.config["kid"]}

    def figure_params(self) -> dict[str, Any]:
        return {"sample": self.demo["sample_face"]}

    # --- generators -----------------------------------------------------------------------------

    def generator(self, name: str) -> Mapping[str, Any]:
        return self.entry("generators", name)

    def generator_network(self, name: str) -> str:
        """The generator file: the fitted demo model (made by this run), or the configured .pkl/.pt path."""
        if name in self.heatmaps:
            self.entry("heatmaps", name)
        network = self.generator(name)["network"]
        return f"{self.results}/generators/{name}.pt" if network == "ppca-demo" else network

    def fit_on(self, name: str) -> str:
        """The image set the demo generator NAME is fitted to."""
        return self.generator(name)["fit_on"]

    def sampling(self, generator: str) -> dict[str, Any]:
        """Truncation, noise mode and class of a generator, as the scripts take them (a plain dict)."""
        options = self.generator(generator)
        return {key: options[key] for key in SAMPLING_KEYS}

    def generation_settings(self, generator: str, n: int | str, z: int | str) -> dict[str, Any]:
        """N images from latent seed Z of GENERATOR: the `generation` param of generated_features."""
        return {"num_images": int(n), "latent_seed": int(z), **self.sampling(generator)}

    def which(self, generator: str) -> str:
        return self.generator(generator)["which"]

    def generated_features_path(self, generator: str, n: int, z: int) -> str:
        return f"{self.results}/generated/{generator}/features_n{n}_z{z}.npz"

    def generated_stats_path(self, generator: str, n: int, z: int) -> str:
        return f"{self.results}/generated/{generator}/stats_n{n}_z{z}.npz"

    # --- heatmaps -------------------------------------------------------------------------------

    def heatmap(self, generator: str) -> Mapping[str, Any]:
        return self.entry("heatmaps", generator)

    def heatmap_reference_stats(self, generator: str) -> str:
        return self.stats_path(self.heatmap(generator)["reference"])

    def heatmap_generated_stats(self, generator: str) -> str:
        study = self.heatmap(generator)
        return self.generated_stats_path(generator, study["num_generated"], study["latent_seed"])

    def heatmap_params(self, generator: str) -> dict[str, Any]:
        """The params heatmap_seed and heatmap_grid share (seeds and grid come from the wildcards)."""
        study = self.heatmap(generator)  # first: its check names the heatmaps entry
        return {"sampling": self.sampling(generator), "which": self.which(generator),
                "weighting": study["weighting"], "device": self.config["device"],
                "detector": self.detector_params()}

    def heatmap_seed_path(self, generator: str, seed: int) -> str:
        return f"{self.results}/heatmaps/{generator}/seed{seed:04d}.png"

    def heatmap_grid_path(self, generator: str, first: int, rows: int, cols: int) -> str:
        return f"{self.results}/heatmaps/{generator}/grid_{first}_{rows}x{cols}.png"

    def heatmap_figures(self, generator: str) -> list[dict[str, Any]]:
        """Every configured heatmap figure of GENERATOR: its seeds, grid shape (None for one seed) and files.

        One job draws them all (rules/heatmaps.smk): it loads the detector, the generator and the
        statistics once and explains a seed shown twice (alone and in a grid) once. Read without
        the entry's checks, so that listing files never stops a run; the job's inputs check it.
        """
        study = self.heatmaps[generator]
        base = f"{self.results}/heatmaps/{generator}"
        figures: list[dict[str, Any]] = []
        for seed in study.get("seeds", []):
            stem = f"{base}/seed{int(seed):04d}"
            figures.append({"seeds": [int(seed)], "grid": None,
                            "outputs": {"figure": f"{stem}.png", "maps": f"{stem}.npz", "numbers": f"{stem}.json"}})
        for first, rows, cols in study.get("grids", []):
            stem = f"{base}/grid_{first}_{rows}x{cols}"
            figures.append({"seeds": grid_seeds(first, rows, cols),
                            "grid": [int(rows), int(cols)],
                            "outputs": {"figure": f"{stem}.png", "tiles": f"{stem}.csv", "maps": f"{stem}.npz"}})
        return figures

    def heatmap_jobs(self) -> list[dict[str, Any]]:
        """What the `heatmaps` job draws, per generator: its files, statistics, sampling and figures."""
        return [{"generator": name, "network": self.generator_network(name),
                 "reference": self.heatmap_reference_stats(name), "generated": self.heatmap_generated_stats(name),
                 "figures": self.heatmap_figures(name),
                 **{key: value for key, value in self.heatmap_params(name).items() if key in ("sampling", "which", "weighting")}}
                for name in self.heatmaps]

    def heatmap_targets(self) -> list[str]:
        targets = []
        for generator, study in self.heatmaps.items():
            targets += [self.heatmap_seed_path(generator, seed) for seed in study["seeds"]]
            targets += [self.heatmap_grid_path(generator, *grid) for grid in study["grids"]]
        return targets

    # --- resampling -----------------------------------------------------------------------------

    def _resampling_run(self, run: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if run not in self._resampling_runs:
            spec = self.entry("resampling", run)
            generated = spec.get("generator")
            control = self.resampling_control(run)
            inputs: dict[str, Any] = {"reals": [self.features_path(spec["reals"])]}
            params: dict[str, Any] = {
                "real_images": [self.image_set_path(spec["reals"])],
                "real_label": spec["reals"],  # how titles name the reals: the set, not its folder
                "pool_images": [self.image_set_path(name) for name in spec["pool"]],
                "pool_labels": list(spec["pool"]),
                "generator": None,
                "settings": {key: spec[key] for key in RESAMPLING_SETTINGS},
                "control": None,
                "detector": self.detector_label(),
                "device": self.config["device"],
            }
            if generated:
                name, n, z = generated["name"], generated["num_images"], generated["latent_seed"]
                network = self.generator_network(name)
                # with a control: one generation pass measures the pool for both (rule generated_pool)
                inputs["pool"] = [f"{self.pool_folder(name, n, z)}/inception.npz" if control
                                  else self.generated_features_path(name, n, z)]
                inputs["network"] = network
                params["generator"] = {"name": name, "network": network, "num_images": n, "latent_seed": z,
                                       "sampling": self.sampling(name), "which": self.which(name)}
            else:
                inputs["pool"] = [self.features_path(name) for name in spec["pool"]]
            if control:
                params["control"] = control
                if control["name"] in DEFAULT_WEIGHTS:  # a network: its weights file is a declared input
                    inputs["control_weights"] = control["weights"]  # (the download rule fetches it when missing)
                # the control features come from files made once per set / pool (rules/resampling.smk)
                inputs["real_control"] = [self.control_features_path(control["name"], spec["reals"])]
                inputs["pool_control"] = ([f"{self.pool_folder(name, n, z)}/control.npz"] if generated
                                          else [self.control_features_path(control["name"], pool)
                                                for pool in spec["pool"]])
            self._resampling_runs[run] = (inputs, params)
        return self._resampling_runs[run]

    def resampling_control(self, run: str) -> dict[str, str] | None:
        """RUN's control detector {name, weights, label} (weights a file for a network), None when it has none.

        ``clip_weights: W`` is ``control_detector: {name: clip, weights: W}``; giving both, an
        unregistered detector, or stored embeddings for a generated pool is refused in one line.
        """
        self.entry("resampling", run)
        control, problem = self._control_of(run)
        if problem:
            self._problem(problem)
        return control

    def _control_of(self, run: str) -> tuple[dict[str, str] | None, str | None]:
        """(control, None), or (None, the one-line problem) without refusing: see `resampling_control`."""
        from fidlens.core.errors import FidlensError
        from fidlens.detectors.registry import registered
        from fidlens.studies.resampling.control import control_space

        spec, key = self.resampling[run], f"config resampling.{run}"
        control, clip = spec.get("control_detector"), spec.get("clip_weights")
        if control and clip:
            return None, (f"{key}: clip_weights and control_detector both name the control space; keep one "
                          f"(clip_weights: {clip} is control_detector: {{name: clip, weights: {clip}}})")
        if not control and not clip:
            return None, None
        name, weights = ("clip", clip) if clip else (control["name"], control.get("weights", "default"))
        if name == "precomputed" and spec.get("generator"):
            return None, (f"{key}.control_detector: a generated pool has no stored embeddings; choose a detector "
                          "that reads images (clip, pixels, inception)")
        if name == "precomputed" and weights == "default":
            return None, f"{key}.control_detector: precomputed needs weights: the folder of the sets' SET.npy / SET.npz"
        if name in DEFAULT_WEIGHTS:  # a network's weights: a file (default and URLs point into $FIDLENS_HOME)
            weights = self.weights_file(weights, name)
        try:
            registered(name)
            label = control_space(name, weights).label
        except FidlensError as exc:
            return None, f"{key}.control_detector: {exc}"
        return {"name": name, "weights": weights, "label": label}, None

    def control_weights_files(self, control: Mapping[str, str]) -> list[str]:
        """The control detector's weights file when it is a network's (a declared input, fetched when missing)."""
        return [control["weights"]] if control["name"] in DEFAULT_WEIGHTS else []

    def pool_folder(self, generator: str, n: int | str, z: int | str) -> str:
        """Where a generated pool's per-detector feature files lie (inception.npz, control.npz)."""
        return f"{self.results}/resampling/pools/{generator}_n{n}_z{z}"

    def control_features_path(self, detector: str, dataset: str) -> str:
        """DETECTOR's features of an image set (the reals, or a set of an image pool), made once."""
        return f"{self.results}/resampling/{detector}/{dataset}.npz"

    def _control_users(self) -> list[tuple[dict[str, str], str | None, tuple[str, int, int] | None]]:
        """(control, dataset, None) for every image set and (control, None, pool) for every generated pool read."""
        used = []
        for run, spec in self.resampling.items():
            control, problem = self._control_of(run)
            if control is None or problem or entry_problem(self.config, "resampling", run):
                continue  # refused when a target needs the run (resampling_control): others may stay half-edited
            generated = spec.get("generator")
            used.append((control, spec["reals"], None))
            if generated:
                used.append((control, None, (generated["name"], generated["num_images"], generated["latent_seed"])))
            else:
                used += [(control, pool, None) for pool in spec["pool"]]
        return used

    def resampling_control_spec(self, *, dataset: str | None = None, pool: tuple[str, int, int] | None = None,
                                detector: str | None = None) -> dict[str, str]:
        """The control {name, weights} of the runs that read DATASET's (DETECTOR's) or POOL's control features."""
        found = {(c["name"], c["weights"]) for c, d, p in self._control_users()
                 if (dataset is not None and d == dataset and detector in (None, c["name"]))
                 or (pool is not None and p == pool)}
        what = f"dataset {dataset}" if dataset is not None else f"pool {pool}"
        if len(found) != 1:
            named = ", ".join(f"{n} {w}" for n, w in sorted(found)) or "none"
            self._problem(f"config resampling: the control features of {what} are read by runs with "
                          f"{'no' if not found else 'different'} control detectors ({named})")
        name, weights = found.pop()
        return {"name": name, "weights": weights}

    def control_feature_jobs(self) -> list[dict[str, Any]]:
        """What the control_features job measures: each (detector, image set) the runs read, once, with its file."""
        jobs: dict[str, dict[str, Any]] = {}
        for control, dataset, _ in self._control_users():
            if dataset is None:
                continue
            out = self.control_features_path(control["name"], dataset)
            detector = self.resampling_control_spec(dataset=dataset, detector=control["name"])
            source = self.image_set_path(dataset)
            if detector["name"] == "precomputed":  # the set's stored embeddings: FOLDER/SET.npz, else FOLDER/SET.npy
                npz = f"{detector['weights'].rstrip('/')}/{dataset}.npz"
                source = npz if os.path.isfile(npz) else npz[:-1] + "y"
            jobs[out] = {"dataset": dataset, "detector": detector, "source": source, "out": out,
                         "max_images": self.max_images(dataset)}
        return list(jobs.values())

    def generated_pool_params(self, generator: str, n: int | str, z: int | str) -> dict[str, Any]:
        """Params of the generated_pool job: the generation, its detectors (Inception and the control), the device."""
        control = self.resampling_control_spec(pool=(generator, int(n), int(z)))
        return {"generation": self.generation_settings(generator, n, z), "which": self.which(generator),
                "detectors": {"inception": self.detector_params(), "control": control},
                "device": self.config["device"], "batch_size": self.config["batch_size"]}

    def resampling_folder(self, run: str, mode: str) -> str:
        return f"{self.results}/resampling/{run}/{mode}"

    def resampling_job(self, run: str, mode: str) -> ResamplingJob:
        """Inputs and params of the resample job RUN/MODE (the run's part is worked out once)."""
        inputs, params = self._resampling_run(run)
        return ResamplingJob(dict(inputs), {**params, "mode": mode, "outdir": self.resampling_folder(run, mode),
                                            "published": self.resampling_published(run, mode)})

    def resampling_published(self, run: str, mode: str) -> dict[str, Any] | None:
        """The published values of RUN/MODE (source, iterations and each given metric), None when none.

        Checked here so that a typo (a mode the run does not have, a list one value short) stops
        the plan with one line instead of quietly dropping a number that should sit beside ours.
        """
        spec = self.entry("resampling", run)
        published = spec.get("published") or {}
        key = f"resampling.{run}.published"
        for name, values in published.items():
            if name not in spec["modes"]:
                self._problem(unknown(key, name, set(spec["modes"]), "mode of this run"))
            for metric, numbers in values.items():
                if metric not in ("source", "iterations") and len(numbers) != len(values["iterations"]):
                    self._problem(f"config {key}.{name}.{metric}: {len(numbers)} value(s) for "
                                  f"{len(values['iterations'])} iteration(s)")
        if mode not in published:
            return None
        return {field: value if isinstance(value, str) else list(value) for field, value in published[mode].items()}

    def resampling_targets(self) -> list[str]:
        return [f"{self.resampling_folder(run, mode)}/log.csv"
                for run, spec in self.resampling.items() for mode in spec["modes"]]

    # --- the pairs study ------------------------------------------------------------------------

    def pairs_study(self, model: str) -> Mapping[str, Any]:
        return self.entry("pairs", model)

    def pairs_folder(self, model: str) -> str:
        return f"{self.results}/pairs/{model}"

    def pairs_generator(self, model: str) -> str:
        return self.pairs_study(model)["generator"]

    def pairs_generator_network(self, model: str) -> str:
        return self.generator_network(self.pairs_generator(model))

    def pairs_file_inputs(self, model: str) -> dict[str, str]:
        """The generator always; the user's pairs file too unless the automatic rule picks the pairs."""
        inputs = {"network": self.pairs_generator_network(model)}
        if self.pairs_study(model)["pairs"] != "auto":
            inputs["pairs"] = self.pairs_study(model)["pairs"]
        return inputs

    def pairs_sampling(self, model: str) -> dict[str, Any]:
        return self.sampling(self.pairs_generator(model))

    def pairs_which(self, model: str) -> str:
        return self.which(self.pairs_generator(model))

    def pairs_study_settings(self, model: str) -> dict[str, Any]:
        study = self.pairs_study(model)
        return {**{key: study[key] for key in PAIRS_STUDY_KEYS}, **self.pairs_sampling(model),
                "batch_size": self.config["batch_size"]}

    def pairs_reference_stats(self, model: str) -> str:
        return self.stats_path(self.pairs_study(model)["reference"])

    def pair_map_params(self, model: str) -> dict[str, Any]:
        """Params of the pair maps: sampling, and how many reals and generated images their statistics hold."""
        study = self.pairs_study(model)
        generated = study.get("map_generated_images") or study["num_images"] - 1
        return {"sampling": self.pairs_sampling(model), "which": self.pairs_which(model),
                "device": self.config["device"], "detector": self.detector_params(),
                "reference_images": study.get("map_reference_images", 50000),
                "generated_images": min(int(generated), int(study["num_images"])),
                "covariance": self.config["covariance"]}

    def pair_map_inputs(self, model: str) -> dict[str, str]:
        """The files every pair map of MODEL reads (the pairs_maps job and the one-pair pair_map job)."""
        return {"network": self.pairs_generator_network(model), "weights": self.weights_path(),
                "pairs": f"{self.pairs_folder(model)}/pairs.yaml",
                "study": f"{self.pairs_folder(model)}/study.npz",  # its first N-1 images: the generated statistics
                "reference": self.pair_map_reference_features(model)}

    def pair_map_reference_features(self, model: str) -> str:
        """The reals' features: the maps take their first `map_reference_images` rows (rules/pairs.smk)."""
        return self.features_path(self.pairs_study(model)["reference"])

    def pairs_table(self) -> dict[str, str]:
        return {"csv": f"{self.results}/tables/pairs_table2.csv", "markdown": f"{self.results}/tables/pairs_table2.md"}

    def pairs_table_params(self) -> dict[str, Any]:
        return {"models": list(self.pairs), "published": {m: s.get("published") for m, s in self.pairs.items()}}

    def pairs_table1(self) -> dict[str, str]:
        """Table 1 (pairs per model, ours beside the published count), next to Table 2's files."""
        return {"csv": f"{self.results}/tables/pairs_table1.csv", "markdown": f"{self.results}/tables/pairs_table1.md"}

    def pairs_table1_params(self) -> dict[str, Any]:
        return {"models": list(self.pairs), "published": {m: s.get("published") for m, s in self.pairs.items()},
                "networks": {m: self.pairs_generator_network(m) for m in self.pairs}}

    def pairs_figure4(self, model: str) -> dict[str, str]:
        """Fig. 4: the automatically selected bad images above their w′ replacements (a PNG and its CSV)."""
        return {"figure": f"{self.pairs_folder(model)}/figure4.png", "table": f"{self.pairs_folder(model)}/figure4.csv"}

    def pair_maps_folder(self, model: str) -> str:
        """Where the pairs_maps job draws every pair (one job: the set-up is paid once)."""
        return f"{self.pairs_folder(model)}/maps"

    def pair_map_files(self, model: str, stems: list[str]) -> list[str]:
        """The figure of every pair (STEMS: `pair_BAD_GOOD`, known once the pairs file exists)."""
        return [f"{self.pair_maps_folder(model)}/{stem}.png" for stem in stems]

    def pairs_targets(self) -> list[str]:
        if not self.pairs:
            return []
        tables = self.pairs_table()
        # Table 1 and Fig. 4 where the config asks (a published pair count; figure4: N images)
        table1 = list(self.pairs_table1().values()) if any(
            (study.get("published") or {}).get("pairs") is not None for study in self.pairs.values()) else []
        figures = [self.pairs_figure4(model)["figure"] for model, study in self.pairs.items()
                   if study.get("figure4")]
        return [tables["csv"], tables["markdown"]] + table1 + [
            f"{self.pairs_folder(model)}/maps.md" for model, study in self.pairs.items() if study["maps"]] + figures

    # --- shards (rules/shards.smk) ---------------------------------------------------------------

    def shard_size(self, section: str, name: str) -> int | None:
        """Images per shard of dataset / generator NAME (SECTION datasets or generators): its own
        `shard_size` when the entry has the key (null: unsharded), else the config's; None = one job."""
        entry = self.config.get(section, {}).get(name, {})
        return entry["shard_size"] if "shard_size" in entry else self.config.get("shard_size")

    def sharded_names(self, section: str) -> list[str]:
        """The datasets (or generators) extracted in shards."""
        return [name for name in self.config.get(section, {}) if self.shard_size(section, name)]

    def shard_pattern(self, section: str) -> str:
        """A wildcard regex matching exactly the sharded names of SECTION (nothing when none is)."""
        import re

        names = self.sharded_names(section)
        return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True)) or "(?!)"

    def dataset_size(self, name: str) -> int:
        """The images a dataset's extraction covers, known while the DAG is built.

        Counted from the folder or ZIP when it exists (names only: no image is read), capped by
        max_images; before it is placed, max_images or `expected_images` stands in (the merge
        refuses shards that miss images, so a wrong stand-in fails loudly, never silently).
        """
        if name not in self._dataset_sizes:
            spec = self.entry("datasets", name)
            path, limit = spec["path"], spec.get("max_images")
            if os.path.exists(path):
                from fidlens.core.errors import FidlensError
                from fidlens.data.datasets import open_image_source

                try:
                    count = len(open_image_source(path, max_images=limit))
                except FidlensError as exc:
                    self._problem(f"config datasets.{name}.path: {exc}")
            elif limit or spec.get("expected_images"):
                count = min(n for n in (limit, spec.get("expected_images")) if n)
            else:
                self._problem(f"config datasets.{name}: {path} is not there yet, so its shards cannot be counted; "
                              "place it, or give expected_images (or max_images)")
            self._dataset_sizes[name] = count
        return self._dataset_sizes[name]

    @staticmethod
    def _ranges(num_images: int, shard_size: int) -> list[tuple[int, int]]:
        return [(start, min(start + shard_size, num_images)) for start in range(0, num_images, shard_size)]

    def dataset_shards(self, name: str) -> list[tuple[int, int]]:
        """[start, stop) of every shard of dataset NAME: shard i holds images [i·S, (i+1)·S) of its sorted order."""
        return self._ranges(self.dataset_size(name), self.shard_size("datasets", name))

    def generated_shards(self, generator: str, n: int | str) -> list[tuple[int, int]]:
        """[start, stop) of every shard of N images of GENERATOR (rows of its latent stream)."""
        return self._ranges(int(n), self.shard_size("generators", generator))

    def dataset_shard_files(self, name: str) -> dict[str, list[str]]:
        """The shard files the merge of dataset NAME reads: features and moments, shard by shard."""
        base = f"{self.results}/shards/datasets/{name}"
        count = len(self.dataset_shards(name))
        return {"shards": [f"{base}/shard{i:04d}.npz" for i in range(count)],
                "moments": [f"{base}/shard{i:04d}.moments.npz" for i in range(count)]}

    def generated_shard_files(self, generator: str, n: int | str, z: int | str) -> dict[str, list[str]]:
        base = f"{self.results}/shards/generated/{generator}/n{n}_z{z}"
        count = len(self.generated_shards(generator, n))
        return {"shards": [f"{base}/shard{i:04d}.npz" for i in range(count)],
                "moments": [f"{base}/shard{i:04d}.moments.npz" for i in range(count)]}

    def dataset_shard_rows(self, name: str, shard: int | str) -> list[int]:
        """[start, stop) of shard SHARD of dataset NAME (the feature_shard job's `rows`)."""
        return self._shard_of(self.dataset_shards(name), shard, f"dataset {name}")

    def generated_shard_rows(self, generator: str, n: int | str, shard: int | str) -> list[int]:
        return self._shard_of(self.generated_shards(generator, n), shard, f"{n} images of {generator}")

    def _shard_of(self, shards: list[tuple[int, int]], shard: int | str, what: str) -> list[int]:
        index = int(shard)
        if not 0 <= index < len(shards):
            self._problem(f"{what} has {len(shards)} shard(s); there is no shard {index}")
        return list(shards[index])

    def shard_jobs(self) -> list[dict[str, Any]]:
        """Every sharded set this config's targets may build: what `fidlens plan` and the dry run show."""
        sets = [{"kind": "dataset", "name": name, "num_images": self.dataset_size(name),
                 "shard_size": self.shard_size("datasets", name), "shards": len(self.dataset_shards(name))}
                for name in self.sharded_names("datasets")]
        generated = {(study_generator, study["num_generated"], study["latent_seed"])
                     for study_generator, study in self.heatmaps.items()}
        generated |= {(spec["generator"]["name"], spec["generator"]["num_images"], spec["generator"]["latent_seed"])
                      for spec in self.resampling.values()
                      if spec.get("generator") and not (spec.get("clip_weights") or spec.get("control_detector"))}
        for name, n, z in sorted(generated):
            if name in self.sharded_names("generators"):
                sets.append({"kind": "generated", "name": f"{name}_n{n}_z{z}", "generator": name,
                             "num_images": n, "shard_size": self.shard_size("generators", name),
                             "shards": len(self.generated_shards(name, n))})
        return sets

    # --- everything -----------------------------------------------------------------------------

    def all_targets(self) -> list[str]:
        """What `snakemake` with no target builds: exactly what the config names."""
        return [*self.demo_targets(),
                *[self.stats_path(name) for name in self.datasets],
                *[self.zip_path(name) for name in self.config.get("zips", {})],
                *self.heatmap_targets(), *self.resampling_targets(), *self.pairs_targets(),
                *self.beyond_targets()]


def grid_seeds(first: int | str, rows: int | str, cols: int | str) -> list[int]:
    """The latent seeds of a ROWS x COLS heatmap grid, FIRST, FIRST+1, ... row by row."""
    return list(range(int(first), int(first) + int(rows) * int(cols)))


def load_plan(path: str | os.PathLike, *, home: str | os.PathLike | None = None) -> Plan:
    """The plan of a config file, checked and completed as the workflow does (for scripts and tests)."""
    from fidlens.workflow.config import load_config

    return Plan(load_config(path), home=home)


def demo_plan(*, home: str | os.PathLike | None = None) -> Plan:
    """The plan of config/demo.yaml: what `snakemake` runs without --configfile (and `make demo`)."""
    from fidlens.workflow.config import DEMO_CONFIG

    return load_plan(DEMO_CONFIG, home=home)
