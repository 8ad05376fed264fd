"""Packaging hygiene: an SPDX licence that builds without deprecation warnings, ignored report files."""

from __future__ import annotations

import subprocess
import sys

import pytest
import tomllib
from conftest import REPO
from packaging.requirements import Requirement
from packaging.version import Version


def test_licence_is_an_spdx_string_with_its_file():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "MIT"
    assert all((REPO / name).is_file() for name in project["license-files"])
    assert "MIT License" in (REPO / "LICENSE").read_text()
    setuptools = next(Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools"))
    assert Version("76.9") not in setuptools.specifier and Version("77.0") in setuptools.specifier


def test_installed_setuptools_supports_the_spdx_licence():
    setuptools = pytest.importorskip("setuptools")
    assert Version(setuptools.__version__) >= Version("77")


@pytest.mark.slow
def test_building_the_package_prints_no_deprecation_warning(tmp_path):
    """The venv's setuptools (no build isolation: nothing is downloaded) builds the wheel quietly."""
    pytest.importorskip("setuptools")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                             "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "deprecated" not in output.lower(), [line for line in output.splitlines() if "deprecat" in line.lower()]
    assert list(tmp_path.glob("fidlens-*.whl"))


@pytest.mark.parametrize("name", ["report.html", "report.zip"])
def test_snakemake_reports_are_ignored_by_git(name):
    result = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, capture_output=True)
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0, f"{name} is not in .gitignore"
