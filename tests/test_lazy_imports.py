"""The data and plot jobs never import torch; the jobs that compute with it load it before `logged` sets threads.

Why: rules that only move files, hash images, turn features into statistics or draw figures run
in envs/data.yaml and envs/plot.yaml, which carry no torch (and a job should not pay a second of
torch import to write a CSV). One module-level `import torch` on such a script's import chain
would break those envs, so the chains are imported here in a fresh interpreter in which importing
torch fails. Conversely, `fidlens.workflow.jobs.logged` sets torch's thread count only when the
job has loaded torch already, so a torch job must do that when its script is imported.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

# A fresh interpreter in which `import torch` fails, naming the module that tried.
NO_TORCH = textwrap.dedent("""
    import importlib, sys, traceback

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                caller = [f for f in traceback.extract_stack() if "/fidlens/" in f.filename]
                where = f"{caller[-1].filename}:{caller[-1].lineno}" if caller else "?"
                raise ImportError(f"torch imported by {where}")
            return None

    sys.meta_path.insert(0, NoTorch())
""")


def rule_scripts() -> dict[str, set[str]]:
    """env name → the scripts its rules run (rules/*.smk: each rule's conda env and script)."""
    scripts: dict[str, set[str]] = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = list(re.finditer(r"^(?:rule|checkpoint) \w+:", text, flags=re.M))
        for this, after in zip(starts, [*starts[1:], None]):
            block = text[this.start() : after.start() if after else len(text)]
            env = re.search(r'conda:\s*\n\s*"\.\./envs/(\w+)\.yaml"', block)
            script = re.search(r'script:\s*\n\s*"\.\./(scripts/[\w/]+\.py)"', block)
            if env and script:
                scripts.setdefault(env.group(1), set()).add(script.group(1))
    return scripts


def fidlens_imports(script: str) -> list[str]:
    """The fidlens modules SCRIPT imports at its top level (what runs before its `main`)."""
    tree = ast.parse((REPO / script).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fidlens"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("fidlens")]
    return names


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def _threaded_rule_scripts() -> set[str]:
    """The scripts of rules that declare ``threads:`` (the job context hands those to torch)."""
    found = set()
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = list(re.finditer(r"^(?:rule|checkpoint) \w+:", text, flags=re.M))
        for this, after in zip(starts, [*starts[1:], None]):
            block = text[this.start() : after.start() if after else len(text)]
            script = re.search(r'script:\s*\n\s*"\.\./(scripts/[\w/]+\.py)"', block)
            if script and re.search(r"^\s*threads:", block, flags=re.M):
                found.add(script.group(1))
    return found


def _passes_threads(script: str) -> bool:
    """`logged(log, threads)`, or the job context (`job(snakemake)`) of a rule that declares threads."""
    tree = ast.parse((REPO / script).read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    if any(getattr(n.func, "id", None) == "logged" and len(n.args) >= 2 for n in calls):
        return True
    return script in _threaded_rule_scripts() and any(getattr(n.func, "id", None) == "job" for n in calls)


TORCHLESS = sorted(rule_scripts().get("data", set()) | rule_scripts().get("plot", set()))
THREADED_TORCH_JOBS = sorted(s for s in rule_scripts().get("torch", set()) if _passes_threads(s))


def test_the_rules_name_torchless_scripts():
    """The parse below found the rules (a renamed folder would make the next test pass vacuously)."""
    assert {"scripts/statistics.py", "scripts/fid_table.py", "scripts/plot_fid_vs_distortion.py"} <= set(TORCHLESS)
    assert "scripts/features.py" in THREADED_TORCH_JOBS and "scripts/fid_table.py" not in THREADED_TORCH_JOBS


@pytest.mark.parametrize("script", TORCHLESS)
def test_data_and_plot_scripts_import_without_torch(script):
    modules = fidlens_imports(script)
    assert modules, f"{script} imports no fidlens module"
    code = NO_TORCH + "\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nassert 'torch' not in sys.modules\n"
    result = _run(code, *modules)
    assert result.returncode == 0, f"{script} needs torch:\n{result.stderr.strip().splitlines()[-1]}"


def test_statistics_provenance_and_a_saved_study_work_without_torch(tmp_path):
    """What the data jobs do at run time (lazy imports included): features → statistics → FID, a study's table row."""
    code = NO_TORCH + textwrap.dedent("""
        from pathlib import Path

        import numpy as np

        from fidlens.extraction.pipeline import statistics_from_features
        from fidlens.metrics.frechet import frechet_distance
        from fidlens.metrics.stats import FeatureSet, Statistics
        from fidlens.studies.pairs.study_file import FORMAT, Study, save_study
        from fidlens.studies.pairs.table import study_row
        from fidlens.workflow.provenance import device_info

        tmp, rng = Path(sys.argv[1]), np.random.default_rng(0)
        FeatureSet(rng.normal(size=(30, 6)), {"detector": "made-up", "num_images": 30}).save(tmp / "f.npz")
        statistics_from_features(FeatureSet.load(tmp / "f.npz"), "unbiased").save(tmp / "s.npz")
        stats = Statistics.load(tmp / "s.npz")
        assert stats.num_images == 30 and abs(frechet_distance(stats.mu, stats.sigma, stats.mu, stats.sigma)) < 1e-9
        arrays = {"pool3": rng.normal(size=(30, 6)), "faces": np.ones(30, bool), "selected": np.arange(3),
                  "pool3_replaced": rng.normal(size=(3, 6)), "faces_replaced": np.ones(3, bool), "d": np.zeros(30)}
        meta = {"format": FORMAT, "settings": {"fraction": 0.1}, "num_pairs": 1, "face_detector": None}
        save_study(arrays, meta, tmp / "study.npz")
        row = study_row(Study.load(tmp / "study.npz"), stats)
        assert row["num_selected"] == 3 and row["FID"] > 0
        assert device_info()["torch_threads"] is None  # recorded as absent, not an error
        assert "torch" not in sys.modules
    """)
    result = _run(code, str(tmp_path))
    assert result.returncode == 0, result.stderr


def _module_level_imports(path: Path) -> set[str]:
    """Names imported when PATH is imported (not inside functions, not under `if TYPE_CHECKING:`)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found.add(node.module or "")
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return found


def _loads_torch_on_import(modules: list[str]) -> bool:
    src = REPO / "src"
    seen, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for candidate in (src / Path(*name.split(".")).with_suffix(".py"), src / Path(*name.split(".")) / "__init__.py"):
            if candidate.is_file():
                imported = _module_level_imports(candidate)
                if any(n == "torch" or n.startswith("torch.") for n in imported):
                    return True
                todo += [n for n in imported if n.startswith("fidlens")]
    return False


@pytest.mark.parametrize("script", THREADED_TORCH_JOBS)
def test_torch_jobs_that_ask_for_threads_load_torch_when_imported(script):
    """The job context (`logged`) finds torch in sys.modules only if the script's imports loaded it."""
    own = _module_level_imports(REPO / script)
    assert "torch" in own or _loads_torch_on_import(fidlens_imports(script)), (
        f"{script} passes threads to logged() but imports no torch at module level: its thread count would be ignored")


def test_the_import_reader_sees_torch_and_skips_type_checking(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n\ndef f():\n    import torch\n")
    assert "torch" not in _module_level_imports(path)
    path.write_text("try:\n    import torch\nexcept ImportError:\n    torch = None\n")
    assert "torch" in _module_level_imports(path)


@pytest.mark.parametrize("env", ["data", "plot"])
def test_torchless_envs_do_not_pin_torch(env):
    """The envs of the jobs above do not ask for torch (pip still brings it with `-e ..` while fidlens requires it)."""
    import yaml

    spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
    entries = [e for dep in spec["dependencies"] for e in (dep["pip"] if isinstance(dep, dict) else [dep])]
    assert not [e for e in entries if re.match(r"\s*(py)?torch\b", e)], f"envs/{env}.yaml lists torch"
