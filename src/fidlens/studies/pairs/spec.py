"""Pairs files: the bad/good latent pairs people marked for one model, read and checked.

A pairs file is YAML::

    model: ffhq-sg2ada            # optional: a name for the generator these seeds belong to
    probe_step: 0.5               # the step of the probe page the good partners came from
    pairs:
      - {bad: 12, good: "12~57", note: "second mouth"}
      - {bad: 408, good: 1093}

Seeds are NVIDIA's (``RandomState(seed).randn(1, z_dim)``); ``"12~57"`` is probe 57 around
seed 12 (see :mod:`fidlens.generators.latents`). Every mistake is one clear error naming the entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fidlens.core.atomic import atomic_path
from fidlens.core.errors import FidlensError
from fidlens.generators.latents import LatentRef, parse_latent

FILE_KEYS = {"model", "probe_step", "pairs", "rule"}
PAIR_KEYS = {"bad", "good", "note"}


class PairsFileError(FidlensError):
    """A pairs file that cannot be used as it is."""


@dataclass(frozen=True)
class Pair:
    bad: LatentRef
    good: LatentRef
    note: str = ""

    @property
    def stem(self) -> str:
        """The file stem of this pair's figure: pair_0012_0012p57."""
        return f"pair_{self.bad.file_stem}_{self.good.file_stem}"


@dataclass
class PairsFile:
    pairs: list[Pair]
    probe_step: float = 0.5
    model: str = ""
    rule: str = ""  # how the pairs were chosen, when a program chose them
    source: str = ""

    @property
    def bad(self) -> list[LatentRef]:
        return [p.bad for p in self.pairs]

    @property
    def good(self) -> list[LatentRef]:
        return [p.good for p in self.pairs]

    def to_dict(self) -> dict:
        out: dict = {}
        if self.model:
            out["model"] = self.model
        if self.rule:
            out["rule"] = self.rule
        out["probe_step"] = self.probe_step
        out["pairs"] = []
        for p in self.pairs:
            entry: dict = {"bad": _as_yaml(p.bad), "good": _as_yaml(p.good)}
            if p.note:
                entry["note"] = p.note
            out["pairs"].append(entry)
        return out

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))


def _as_yaml(ref: LatentRef) -> int | str:
    return ref.seed if ref.probe == 0 else str(ref)


@dataclass
class _Checker:
    where: str
    seen_bad: dict = field(default_factory=dict)
    seen_good: dict = field(default_factory=dict)

    def fail(self, message: str) -> PairsFileError:
        return PairsFileError(f"{self.where}: {message}")

    def latent(self, entry: dict, key: str, number: int) -> LatentRef:
        try:
            return parse_latent(entry[key])
        except FidlensError as exc:
            raise self.fail(f"pair {number}: {exc}") from None

    def pair(self, entry: object, number: int) -> Pair:
        if not isinstance(entry, dict):
            raise self.fail(f"pair {number} must be a mapping like {{bad: 12, good: '12~57'}}, not {entry!r}")
        unknown = set(entry) - PAIR_KEYS
        if unknown:
            raise self.fail(f"pair {number} has unknown key(s) {sorted(map(str, unknown))}; use bad, good, note")
        missing = [k for k in ("bad", "good") if k not in entry]
        if missing:
            raise self.fail(f"pair {number} has no '{missing[0]}'")
        bad, good = self.latent(entry, "bad", number), self.latent(entry, "good", number)
        if bad == good:
            raise self.fail(f"pair {number} names {bad} as both bad and good")
        for seen, ref, role in ((self.seen_bad, bad, "bad"), (self.seen_good, good, "good")):
            if ref in seen:
                raise self.fail(f"pair {number} repeats {role} latent {ref} (first in pair {seen[ref]})")
            seen[ref] = number
        if good in self.seen_bad or bad in self.seen_good:
            raise self.fail(f"pair {number}: a latent cannot be bad in one pair and good in another")
        note = entry.get("note", "")
        return Pair(bad, good, "" if note is None else str(note))


def parse_pairs(data: object, where: str = "pairs file") -> PairsFile:
    """Check a loaded YAML document and return the pairs it holds."""
    check = _Checker(where)
    if not isinstance(data, dict):
        raise check.fail("expected a mapping with a 'pairs:' list at the top")
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise check.fail(f"unknown key(s) {sorted(map(str, unknown))}; use {', '.join(sorted(FILE_KEYS))}")
    entries = data.get("pairs")
    if not isinstance(entries, list) or not entries:
        raise check.fail("'pairs:' must be a non-empty list of {bad: SEED, good: SEED or SEED~PROBE}")
    step = data.get("probe_step", 0.5)
    if isinstance(step, bool) or not isinstance(step, int | float) or not step > 0:
        raise check.fail(f"probe_step must be a positive number, not {step!r}")
    pairs = [check.pair(entry, number) for number, entry in enumerate(entries, start=1)]
    return PairsFile(pairs, float(step), str(data.get("model") or ""), str(data.get("rule") or ""), where)


def load_pairs(path: str | os.PathLike) -> PairsFile:
    """Read and check a pairs YAML file."""
    path = Path(path)
    if not path.is_file():
        raise PairsFileError(f"pairs file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PairsFileError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_pairs(data, str(path))


def pairs_file_instructions(path: str | os.PathLike, network: str = "NETWORK.pkl") -> str:
    """What to do when a model's pairs file is missing: pairs are people's work, not a download."""
    return (f"the pairs file {path} does not exist. No seed lists were published: look at about 1,000 seeds "
            f"(`fidlens generate --network {network} --seeds 0-999 --outdir seeds/`), and for each image with a "
            f"severe defect run `fidlens probe --network {network} --seed SEED --outdir probes/`, open "
            f"probes/probe_SEED.html, pick the most similar improved sample and add "
            f"`- {{bad: SEED, good: \"SEED~K\"}}` under `pairs:` in {path} (with `probe_step:` as used).")
