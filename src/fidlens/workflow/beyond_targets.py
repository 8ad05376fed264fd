"""Config → targets of the per-set metrics beyond one FID: attribution, bootstrap intervals, FID∞, PRDC,
and the pairs study's control feature space.

Why a mixin of `fidlens.workflow.targets.Plan`: the four sections share one way of naming sets
(an image set, or a generated set ``{generator, num_images, latent_seed}`` called
``NAME_nN_zZ``), and keeping them in their own file leaves the plan's main file short. Every
method reads the config through `Plan` (``self.config``, ``self.features_path`` …) and
reports a bad name with `Plan._problem` (one line naming the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fidlens.workflow.config import image_set_names, unknown

__all__ = ["BEYOND_SECTIONS", "BeyondTargets", "configured_labels", "resolve_item", "set_label"]

BEYOND_SECTIONS = ("attribution", "fid_ci", "fid_infinity", "prdc")
MIN_FID_INFINITY_IMAGES = 100  # fidlens.metrics.fid_infinity: subsets of at least 50, two of them


def set_label(item: str | Mapping[str, Any]) -> str:
    """How outputs and wildcards name a configured set: its name, or GENERATOR_nN_zZ (a resolved generated set)."""
    if isinstance(item, str):
        return item
    return f"{item['generator']}_n{int(item['num_images'])}_z{int(item.get('latent_seed', 0))}"


def resolve_item(config: Mapping[str, Any], item: str | Mapping[str, Any]) -> str | Mapping[str, Any]:
    """``{heatmaps: GENERATOR}`` → that heatmap study's generated set; anything else as it is.

    Why: the demo attributes the set its heatmaps already measured, whatever its size, so no
    extra generation or Inception pass is planned when a config shrinks the heatmap study.
    """
    if isinstance(item, str) or "heatmaps" not in item:
        return item
    study = (config.get("heatmaps") or {}).get(item["heatmaps"])
    if study is None:
        return {"generator": item["heatmaps"], "num_images": 0, "latent_seed": 0, "unknown_heatmaps": True}
    return {"generator": item["heatmaps"], "num_images": int(study.get("num_generated", 49999)),
            "latent_seed": int(study.get("latent_seed", 0))}


def configured_labels(config: Mapping[str, Any], section: str, *, generated: bool | None = None) -> list[str]:
    """SECTION's set labels read without checks (for wildcard patterns); GENERATED filters by kind."""
    items = [resolve_item(config, item) for item in (config.get(section) or {}).get("sets", [])]
    return [set_label(item) for item in items if generated is None or isinstance(item, str) != generated]


class BeyondTargets:
    """Paths, inputs and params of the attribution, fid_ci, fid_infinity and prdc rules (mixed into Plan)."""

    config: Mapping[str, Any]
    results: str

    # --- sets -------------------------------------------------------------------------------------

    def beyond(self, section: str) -> Mapping[str, Any]:
        return self.config.get(section) or {}

    def beyond_sets(self, section: str) -> dict[str, str | Mapping[str, Any]]:
        """label → configured item of SECTION.sets, each name checked to point at something."""
        names, generators = image_set_names(self.config), set(self.config.get("generators", {}))
        out: dict[str, str | Mapping[str, Any]] = {}
        for i, raw in enumerate(self.beyond(section).get("sets", [])):
            key = f"{section}.sets[{i}]"
            item = resolve_item(self.config, raw)
            if not isinstance(item, str) and item.get("unknown_heatmaps"):
                self._problem(unknown(f"{key}.heatmaps", raw["heatmaps"], set(self.config.get("heatmaps") or {}),
                                      "heatmap study"))
            if isinstance(item, str) and item not in names:
                self._problem(unknown(key, item, names, "image set"))
            if not isinstance(item, str) and item["generator"] not in generators:
                self._problem(unknown(f"{key}.generator", item["generator"], generators, "generator"))
            label = set_label(item)
            if label in out:
                self._problem(f"config {key}: {label!r} is named twice")
            if section == "fid_infinity" and not isinstance(item, str) and item["num_images"] < MIN_FID_INFINITY_IMAGES:
                self._problem(f"config {key}: FID∞ needs at least {MIN_FID_INFINITY_IMAGES} images, "
                              f"{label} has {item['num_images']}")
            out[label] = item
        reference = self.beyond(section).get("reference", "reference")
        if out and reference not in names:
            self._problem(unknown(f"{section}.reference", reference, names, "image set"))
        return out

    def _item(self, section: str, label: str) -> str | Mapping[str, Any]:
        sets = self.beyond_sets(section)
        if label not in sets:
            self._problem(unknown(f"{section}.sets", label, set(sets), "set of this section"))
        return sets[label]

    def beyond_features(self, section: str, label: str) -> str:
        """The feature file of a configured set: an image set's, or the generated set's."""
        item = self._item(section, label)
        if isinstance(item, str):
            return self.features_path(item)
        return self.generated_features_path(item["generator"], int(item["num_images"]),
                                            int(item.get("latent_seed", 0)))

    def beyond_reference(self, section: str) -> str:
        return self.beyond(section).get("reference", "reference")

    def beyond_set_features(self, section: str) -> dict[str, str]:
        return {label: self.beyond_features(section, label) for label in self.beyond_sets(section)}

    # --- attribution ------------------------------------------------------------------------------

    def attribution_folder(self, label: str) -> str:
        return f"{self.results}/attribution/{label}"

    def attribution_outputs(self, label: str) -> dict[str, str]:
        folder = self.attribution_folder(label)
        return {"ranking": f"{folder}/ranking.csv", "summary": f"{folder}/attribution.json",
                "grid": f"{folder}/grid.png"}

    def attribution_inputs(self, label: str) -> dict[str, Any]:
        """Features and reference statistics; the images (an image set) or generator and weights (generated)."""
        item = self._item("attribution", label)
        inputs: dict[str, Any] = {"features": self.beyond_features("attribution", label),
                                  "reference": self.stats_path(self.beyond_reference("attribution"))}
        if isinstance(item, str):
            inputs["images"] = self.image_set_path(item)
        else:
            inputs["network"] = self.generator_network(item["generator"])
            if self.beyond("attribution").get("heatmaps", True):
                inputs["weights"] = self.weights_path()
        return inputs

    def attribution_params(self, label: str) -> dict[str, Any]:
        item = self._item("attribution", label)
        section = self.beyond("attribution")
        params: dict[str, Any] = {"label": label, "top": section.get("top", 4), "covariance": self.config["covariance"],
                                  "generated": None, "heatmaps": bool(section.get("heatmaps", True)),
                                  "weighting": section.get("weighting", "squared"), "device": self.config["device"],
                                  "detector": self.detector_params()}
        if not isinstance(item, str):
            name = item["generator"]
            params["generated"] = {"network": self.generator_network(name), "num_images": int(item["num_images"]),
                                   "latent_seed": int(item.get("latent_seed", 0)), "sampling": self.sampling(name),
                                   "which": self.which(name)}
        return params

    def attribution_torch(self, label: str) -> bool:
        """Whether the job runs a network (a generated set: its images, and heatmaps)."""
        return not isinstance(self._item("attribution", label), str)

    # --- tables and the FID∞ figure -----------------------------------------------------------------

    def fid_ci_table(self) -> str:
        return f"{self.results}/tables/fid_ci.csv"

    def prdc_table(self) -> str:
        return f"{self.results}/tables/prdc.csv"

    def fid_infinity_outputs(self) -> dict[str, str]:
        stem = f"{self.results}/figures/fid_vs_inverse_n"
        return {"figure": f"{stem}.png", "points": f"{stem}.csv", "fits": f"{stem}.json"}

    def beyond_inputs(self, section: str) -> dict[str, Any]:
        """The reference's features and every set's features (named lists, in config order)."""
        sets = self.beyond_set_features(section)
        return {"reference": self.features_path(self.beyond_reference(section)), "sets": list(sets.values())}

    def beyond_params(self, section: str) -> dict[str, Any]:
        """The set labels (in the order of the inputs) and the section's settings."""
        settings = {key: value for key, value in self.beyond(section).items() if key not in ("sets", "reference")}
        return {"labels": list(self.beyond_sets(section)), "settings": settings,
                "covariance": self.config["covariance"], "reference_name": self.beyond_reference(section)}

    # --- the pairs study's control feature space ---------------------------------------------------

    def pairs_control_models(self) -> list[str]:
        """Pairs models whose config names a control detector."""
        return [model for model, study in (self.config.get("pairs") or {}).items() if study.get("control_detector")]

    def pairs_control_outputs(self, model: str) -> dict[str, str]:
        folder = f"{self.results}/pairs/{model}"
        return {"table": f"{folder}/control_fids.csv", "row": f"{folder}/control_row.json"}

    def pairs_control_spec(self, model: str) -> dict[str, str]:
        spec = self.pairs_study(model)["control_detector"]
        return {"name": spec["name"], "weights": spec.get("weights", "default")}

    def pairs_control_inputs(self, model: str) -> dict[str, Any]:
        """The saved study, the generator, the reference images and, for a network detector, its weights file."""
        spec = self.pairs_control_spec(model)
        reference = self.pairs_study(model)["reference"]
        inputs: dict[str, Any] = {"study": f"{self.pairs_folder(model)}/study.npz",
                                  "network": self.pairs_generator_network(model),
                                  "reference": self.image_set_path(reference)}
        if spec["name"] in ("inception", "clip"):
            inputs["weights"] = self.weights_file(spec["weights"], spec["name"])
        return inputs

    def pairs_control_params(self, model: str) -> dict[str, Any]:
        spec = self.pairs_control_spec(model)
        if spec["name"] in ("inception", "clip"):
            spec = {**spec, "weights": self.weights_file(spec["weights"], spec["name"])}
        return {"detector": spec, "covariance": self.config["covariance"], "batch_size": self.config["batch_size"],
                "device": self.config["device"], "which": self.pairs_which(model), "cache": self.feature_cache}

    def beyond_targets(self) -> list[str]:
        """Every output these four sections name (nothing for a config that names no set)."""
        targets: list[str] = []
        for label in self.beyond_sets("attribution"):
            targets += list(self.attribution_outputs(label).values())
        if self.beyond_sets("fid_ci"):
            targets.append(self.fid_ci_table())
        if self.beyond_sets("fid_infinity"):
            targets += list(self.fid_infinity_outputs().values())
        if self.beyond_sets("prdc"):
            targets.append(self.prdc_table())
        for model in self.pairs_control_models():
            targets += list(self.pairs_control_outputs(model).values())
        return targets
