"""The per-rule conda envs: they parse, every rule names one, and their pins agree with pyproject.

Conda is not available on the machines that run CI, so the envs cannot be built here; what can
be checked is that they say the same thing as pyproject.toml, which is what the venv installs.
"""

from __future__ import annotations

import re

import pytest
import tomllib
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ENVS = sorted((REPO / "envs").glob("*.yaml"))
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _runtime_requirements() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in _pyproject()["project"]["dependencies"]]
    return {r.name.lower(): r for r in reqs}


def _pins(env: dict) -> dict[str, str]:
    """name → pinned version, for conda ('numpy=2.4') and pip ('torch==2.13.0') entries."""
    pins = {}
    for dep in env["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(==?)\s*([0-9][0-9A-Za-z.*]*)", entry.split("#")[0].strip())
            if match:
                pins[CONDA_TO_PYPI.get(match.group(1).lower(), match.group(1).lower())] = match.group(3)
            else:
                assert entry.split("#")[0].strip() in ("pip", "-e .."), f"unpinned dependency {entry!r}"
    return pins


def test_there_is_an_env_per_rule_family():
    assert {p.stem for p in ENVS} == {"data", "plot", "torch"}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_installs_fidlens_from_the_checkout(path):
    pip = next(dep["pip"] for dep in yaml.safe_load(path.read_text())["dependencies"] if isinstance(dep, dict))
    assert any(entry.split("#")[0].strip() == "-e .." for entry in pip)
    assert (path.parent / ".." / "pyproject.toml").resolve().is_file()


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_parses_pins_everything_and_agrees_with_pyproject(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"]
    pins = _pins(env)
    assert "python" in pins
    requires_python = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert Version(pins["python"]) in requires_python
    for name, requirement in _runtime_requirements().items():
        if name in pins:
            version = Version(pins[name].rstrip(".*"))
            assert version in requirement.specifier, f"{path.name}: {name} {pins[name]} is outside {requirement}"


def test_the_torch_env_holds_every_runtime_dependency():
    pins = _pins(yaml.safe_load((REPO / "envs" / "torch.yaml").read_text()))
    missing = set(_runtime_requirements()) - set(pins)
    assert not missing, f"envs/torch.yaml lacks {sorted(missing)}"
    assert pins["torch"] == str(_runtime_requirements()["torch"].specifier).removeprefix("==")


def _rule_blocks() -> list[tuple[str, str]]:
    blocks = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m for m in re.finditer(r"^(?:rule|checkpoint) (\w+):", text, flags=re.M)]
        for this, after in zip(starts, [*starts[1:], None]):
            blocks.append((this.group(1), text[this.start() : after.start() if after else len(text)]))
    return blocks


def test_every_rule_names_an_existing_env():
    blocks = _rule_blocks()
    assert len(blocks) > 20
    for name, block in blocks:
        match = re.search(r'conda:\s*\n\s*"\.\./envs/(\w+)\.yaml"', block)
        assert match, f"rule {name} names no conda env"
        assert (REPO / "envs" / f"{match.group(1)}.yaml").is_file(), f"rule {name}: missing env {match.group(1)}"


def test_gpu_rules_say_so_and_take_threads():
    gpu_rules = {name for name, block in _rule_blocks() if re.search(r"resources:\s*\n\s*gpu=1", block)}
    assert {"features", "generated_features", "heatmap_seed", "resample", "pairs_study", "pair_map"} <= gpu_rules
    for name, block in _rule_blocks():
        if name in gpu_rules:
            assert "threads:" in block and "../envs/torch.yaml" in block, name
