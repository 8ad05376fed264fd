"""Every place fidlens deserialises a file or evaluates text, listed and justified.

The scanner reads src/, scripts/, rules/ and the Snakefile (Python by AST, Snakemake files by
regular expression) for calls that can run code from data: ``torch.load``, ``torch.jit.load``,
``pickle`` loading and ``Unpickler`` subclasses, ``np.load`` / ``read_array``, ``yaml.load``,
``marshal``, ``shelve``, ``eval``, ``exec`` and ``compile``. The set of (file, call) sites
must equal ``ALLOWED`` below, and each site must pass its call's safety rule (``weights_only=True``,
no ``allow_pickle=True``, a restricted ``find_class``). A new loader fails this test until it
is justified here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# (file, call) -> why it cannot run code from the file it reads
ALLOWED: dict[tuple[str, str], str] = {
    ("src/fidlens/detectors/inception_weights.py", "torch.load"): "weights_only=True (state dicts: pytorch-fid's .pth)",
    ("src/fidlens/detectors/clip_encoder.py", "torch.load"): "weights_only=True (open_clip / OpenAI state dicts)",
    ("src/fidlens/detectors/clip_encoder.py", "safetensors.torch.load_file"): "safetensors holds tensors and a JSON header only",
    ("src/fidlens/generators/ppca.py", "torch.load"): "weights_only=True (the demo generator)",
    ("src/fidlens/generators/nvidia_pickle.py", "torch.load"):
        "weights_only=True (legacy storages inside a network pickle)",
    ("src/fidlens/generators/nvidia_pickle.py", "pickle.Unpickler subclass"):
        "RestrictedUnpickler.find_class: a data-constructor allow-list, every other global is inert",
    ("src/fidlens/assets/safe_torch_archive.py", "pickle.Unpickler subclass"):
        "InertUnpickler.find_class: our own tensor/list rebuilders, every other global is inert",
    ("src/fidlens/studies/pairs/study_file.py", "numpy.load"): "allow_pickle=False (saved pair statistics)",
    ("src/fidlens/studies/resampling/run.py", "numpy.load"): "numpy's default allow_pickle=False (best_weights.npy, a float array)",
    ("src/fidlens/workflow/readme_numbers.py", "yaml.safe_load"): "safe_load builds plain data only (a run's pairs file)",
    ("src/fidlens/core/feature_cache.py", "numpy.lib.format.read_array"): "allow_pickle=False (feature cache entries)",
    ("src/fidlens/core/npzread.py", "numpy.lib.format.read_array"): "allow_pickle=False (.npz read after its headers)",
    ("src/fidlens/detectors/precomputed.py", "numpy.load"): "allow_pickle=False (.npy embeddings, header checked first)",
    ("src/fidlens/workflow/config_docs.py", "yaml.safe_load"): "safe_load builds plain data only (config schema)",
    ("src/fidlens/workflow/config.py", "yaml.safe_load"): "safe_load builds plain data only (config schema and files)",
    ("src/fidlens/studies/pairs/spec.py", "yaml.safe_load"): "safe_load builds plain data only (pairs files)",
}

_WATCHED = {
    "torch.load", "torch.jit.load", "torch.package.PackageImporter", "pickle.load", "pickle.loads",
    "pickle.Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler", "numpy.load",
    "numpy.lib.format.read_array", "numpy.lib.npyio.load", "yaml.load", "yaml.unsafe_load", "yaml.full_load",
    "yaml.safe_load", "yaml.load_all", "yaml.unsafe_load_all", "yaml.full_load_all", "marshal.load",
    "marshal.loads", "shelve.open", "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads",
    "joblib.load", "safetensors.torch.load_file", "eval", "exec", "compile",
}
_UNPICKLER_BASES = {"pickle.Unpickler", "_pickle.Unpickler"}
_SMK_PATTERN = re.compile(
    r"\b(torch\.load|jit\.load|pickle\.\w+|np\.load|numpy\.load|read_array|yaml\.\w*load\w*|marshal\.\w+|"
    r"shelve\.open|eval|exec|compile)\s*\(")


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> canonical dotted name, from the module's imports (``np`` -> ``numpy``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _canonical(name: str, aliases: dict[str, str]) -> str:
    head, _, rest = name.partition(".")
    full = aliases.get(head, head)
    return f"{full}.{rest}" if rest else full


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _unsafe_reason(call_name: str, call: ast.Call) -> str | None:
    """Why this call site is unsafe, or None when its safety rule holds."""
    if call_name == "torch.load" and not _is_const(_keyword(call, "weights_only"), True):
        return "torch.load without weights_only=True"
    if call_name in ("numpy.load", "numpy.lib.format.read_array", "numpy.lib.npyio.load"):
        flag = _keyword(call, "allow_pickle")
        if flag is not None and not _is_const(flag, False):
            return "allow_pickle is not False"
    if call_name in ("yaml.load", "yaml.load_all"):
        loader = _keyword(call, "Loader")
        if loader is None or (_dotted(loader) or "").split(".")[-1] not in ("SafeLoader", "CSafeLoader"):
            return "yaml.load without a SafeLoader"
    if call_name in ("torch.jit.load", "pickle.load", "pickle.loads", "_pickle.load", "_pickle.loads", "eval", "exec",
                     "compile", "yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all",
                     "marshal.load", "marshal.loads", "shelve.open", "dill.load", "dill.loads", "cloudpickle.load",
                     "cloudpickle.loads", "joblib.load", "torch.package.PackageImporter"):
        return f"{call_name} can run code from its input"
    return None


def scan_python(source: str) -> list[tuple[str, int, str | None]]:
    """(call, line, unsafe reason or None) for every watched call or Unpickler subclass in SOURCE."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            canonical = _canonical(name, aliases)
            if canonical in _WATCHED:
                found.append((canonical, node.lineno, _unsafe_reason(canonical, node)))
        elif isinstance(node, ast.ClassDef):
            bases = {_canonical(_dotted(b) or "", aliases) for b in node.bases}
            if bases & _UNPICKLER_BASES:
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                reason = None if "find_class" in methods else f"{node.name} does not restrict find_class"
                found.append(("pickle.Unpickler subclass", node.lineno, reason))
    return found


def _scanned_files() -> list[Path]:
    files = [p for root in ("src", "scripts", "rules") for p in sorted((REPO / root).rglob("*"))
             if p.suffix in (".py", ".smk") and ".egg-info" not in str(p)]
    snakefile = REPO / "Snakefile"
    return files + ([snakefile] if snakefile.is_file() else [])


def audit() -> tuple[dict[tuple[str, str], list[int]], list[str]]:
    sites: dict[tuple[str, str], list[int]] = {}
    unsafe: list[str] = []
    for path in _scanned_files():
        rel = str(path.relative_to(REPO))
        text = path.read_text()
        if path.suffix == ".py":
            hits = scan_python(text)
        else:  # Snakemake syntax is not Python's; any such call in a rule file is listed as unsafe
            hits = [(m.group(1), text.count("\n", 0, m.start()) + 1, "a loader in a Snakemake file")
                    for m in _SMK_PATTERN.finditer(text)]
        for call, line, reason in hits:
            sites.setdefault((rel, call), []).append(line)
            if reason:
                unsafe.append(f"{rel}:{line}: {reason}")
    return sites, unsafe


def test_every_loading_call_site_is_listed_and_safe():
    sites, unsafe = audit()
    assert not unsafe, "unsafe loading calls:\n" + "\n".join(unsafe)
    unlisted = sorted(set(sites) - set(ALLOWED))
    assert not unlisted, "loading calls not in ALLOWED (justify them there): " + \
        "; ".join(f"{f}:{sites[(f, c)]} {c}" for f, c in unlisted)
    stale = sorted(set(ALLOWED) - set(sites))
    assert not stale, f"ALLOWED lists calls that are gone (remove them): {stale}"


@pytest.mark.parametrize("snippet,reason", [
    ("import torch\ntorch.load(p)\n", "weights_only"),
    ("import torch\ntorch.load(p, weights_only=False)\n", "weights_only"),
    ("from torch.jit import load as jl\njl(p)\n", "torch.jit.load"),
    ("import pickle\npickle.loads(b)\n", "pickle.loads"),
    ("from pickle import load\nload(f)\n", "pickle.load"),
    ("import numpy as np\nnp.load(p, allow_pickle=True)\n", "allow_pickle"),
    ("import numpy\nnumpy.lib.format.read_array(f, allow_pickle=flag)\n", "allow_pickle"),
    ("import yaml\nyaml.load(s)\n", "SafeLoader"),
    ("import yaml\nyaml.load(s, Loader=yaml.FullLoader)\n", "SafeLoader"),
    ("eval(text)\n", "eval"),
    ("exec(text)\n", "exec"),
    ("import pickle\nclass U(pickle.Unpickler):\n    pass\n", "find_class"),
])
def test_the_scanner_flags_unsafe_calls(snippet, reason):
    flagged = [r for _, _, r in scan_python(snippet) if r]
    assert flagged and reason in flagged[0]


def test_the_scanner_accepts_the_safe_forms():
    safe = ("import torch, yaml, numpy as np\ntorch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\n"
            "np.load(p)\nyaml.safe_load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\nmodel.eval()\n")
    hits = scan_python(safe)
    assert [c for c, _, _ in hits] == ["torch.load", "numpy.load", "numpy.load", "yaml.safe_load", "yaml.load"]
    assert all(r is None for _, _, r in hits)  # model.eval() is a method, not the builtin
