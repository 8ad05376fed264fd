# The config checked, the plan built (every path and param: fidlens.workflow.targets), and the
# few helpers that need Snakemake itself (which rule makes a path, manifests, checkpoints).

import os
import sys

from fidlens.core.errors import FidlensError
from fidlens.data.manifest import check_source, refresh_manifest
from fidlens.workflow.config import ConfigError, prepare, refuse
from fidlens.workflow.targets import Plan, grid_seeds

# A bad value stops the run here, before any job, with one line naming its key (`error: config
# device: ...`, exit status 2); prepare() then fills in the defaults of config/schema.yaml.
try:
    for _note in prepare(config, os.path.join(workflow.basedir, "config", "schema.yaml")):
        print(_note, file=sys.stderr)
except ConfigError as _exc:
    refuse(str(_exc))

# Entries are checked where the DAG first needs them, so a study no requested target needs may
# stay half-edited; a name that points at nothing ends the run with one line, exit 2.
PLAN = Plan(config, on_problem=refuse)

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


def image_manifest(name):
    """The content manifest of image set NAME (a configured dataset or a demo set), kept current."""
    return refreshed_manifest(PLAN.image_set_path(name), PLAN.manifest_path(name), PLAN.image_set_what(name))


def source_manifest(source):
    """The content manifest of a folder an image set is built from (`orl`, `zip-NAME`), kept current."""
    return refreshed_manifest(PLAN.source_folder(source), PLAN.source_manifest_path(source), PLAN.source_what(source))


def resampling_param(key):
    """One param of a resample job (the plan works each run out once)."""
    return lambda wildcards: PLAN.resampling_job(wildcards.run, wildcards.mode).params[key]


def heatmap_figure_files():
    """The files of the `heatmaps` job (every configured figure); the pictures go into the report."""
    files = []
    for generator in PLAN.heatmaps:
        for figure in PLAN.heatmap_figures(generator):
            outputs = figure["outputs"]
            if figure["grid"] is None:
                caption, label = "../report/heatmap_seed.rst", f"seed {figure['seeds'][0]}"
            else:
                rows, cols = figure["grid"]
                caption, label = "../report/heatmap_grid.rst", f"grid of {rows}x{cols} from seed {figure['seeds'][0]}"
            files.append(report(outputs["figure"], caption=caption, category="2. FID sensitivity heatmaps",
                                subcategory=generator, labels={"generator": generator, "figure": label}))
            files += [path for key, path in outputs.items() if key != "figure"]
    return files


# --- used by rules/beyond.smk --------------------------------------------------


def _one_of(labels):
    """A wildcard pattern matching exactly LABELS (never matching when there are none)."""
    import re

    return "|".join(re.escape(label) for label in labels) or "[^\\s\\S]"


def attribution_image_inputs(wildcards):
    inputs = PLAN.attribution_inputs(wildcards.set)
    inputs["images"] = as_source(inputs["images"])
    return inputs


def _attribution_labels(generated):
    """The attribution sets' labels, image sets or generated ones (read unchecked: the jobs' inputs check them)."""
    from fidlens.workflow.beyond_targets import configured_labels

    return configured_labels(config, "attribution", generated=generated)


# --- used by rules/datasets.smk ------------------------------------------------


def zip_recipe_message(wildcards):
    from fidlens.data.zipbuild import PILLOW_ROUNDING, describe_recipe

    options = PLAN.zip_options(wildcards.name)
    resized = options["resolution"] is not None
    return describe_recipe({"source_resolution": options.get("source_resolution"), "resolution": options["resolution"],
                            "resize_filter": options["resize_filter"], "rounding": PILLOW_ROUNDING if resized else None,
                            "center_crop": False})
