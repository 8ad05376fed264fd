"""Bad arguments and output paths, refused in one line before any network is loaded or image read.

Each case of `CASES` runs the real CLI with tripwires armed: loading the Inception network,
loading a generator or opening an image set raises AssertionError, which the CLI would turn
into an "internal error" (exit 1) — so a passing case also shows the refusal came first.
The other tests cover the CLI's last-resort handlers: no traceback for an unexpected
exception, one line for OS and memory errors, one line per warning.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input_harness import BadInput, check_bad_input, run_cli, table
from conftest import ORL

from fidlens.core.errors import FidlensError
from fidlens.generators.ppca import PPCAGenerator
from fidlens.metrics.stats import Statistics

ALL_TRIPS = ("detector", "generator", "images")


# ---------------------------------------------------------------- inputs, built inside each case


def faces(tmp: Path, n: int = 5, name: str = "faces") -> Path:
    """N ORL faces (greyscale 92x112 PGM) copied into TMP/NAME."""
    folder = tmp / name
    folder.mkdir(exist_ok=True)
    for i in range(n):
        shutil.copy(ORL / "s1" / f"{i + 1}.pgm", folder / f"{i + 1}.pgm")
    return folder


def a_file(tmp: Path, name: str = "afile") -> Path:
    path = tmp / name
    path.write_text("not a folder\n")
    return path


def a_folder(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.mkdir(exist_ok=True)
    return path


def generator(tmp: Path) -> Path:
    """A small demo generator file (random buffers: enough to generate, cheap to build)."""
    G = PPCAGenerator(8, 32, 3)
    with torch.no_grad():
        G.synthesis.basis.copy_(torch.from_numpy(np.random.default_rng(0).normal(size=G.synthesis.basis.shape)) * 0.1)
    path = tmp / "demo.pt"
    G.save(path)
    return path


def small_stats(tmp: Path, name: str) -> Path:
    path = tmp / name
    Statistics.from_features(np.random.default_rng(1).normal(size=(12, 8))).save(path)
    return path


def heatmap_args(tmp: Path) -> list:
    return ["heatmap", "--reference", small_stats(tmp, "ref.npz"), "--generated", small_stats(tmp, "gen.npz")]


# ---------------------------------------------------------------- the next good run after a refusal


def _good_stats_then_fid_zero(tmp: Path) -> None:
    """`stats -o ok.npz` writes readable statistics and `fid ok.npz ok.npz` is exactly 0."""
    ok = tmp / "ok.npz"
    result = run_cli(["stats", faces(tmp), "-o", ok, "--no-cache", "--quiet", "--device", "cpu"])
    assert result.code == 0, result.stderr
    assert Statistics.load(ok).num_images == 5
    result = run_cli(["fid", ok, ok])
    assert result.code == 0 and float(result.stdout.split("FID: ")[1].split()[0]) == 0.0


def _good_generate_boundary_seed(tmp: Path) -> None:
    """The largest valid seed, 2**32 - 1, generates (RandomState accepts it)."""
    out = tmp / "gen-ok"
    result = run_cli(["generate", "--network", generator(tmp), "--seeds", "4294967295,0", "--outdir", out,
                      "--device", "cpu"])
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed4294967295.png"]


def _good_probe(tmp: Path) -> None:
    out = tmp / "probes-ok"
    result = run_cli(["probe", "--network", generator(tmp), "--seed", "1", "--count", "3", "--tile", "32",
                      "--columns", "4", "--outdir", out, "--no-face-scores", "--quiet", "--device", "cpu"])
    assert result.code == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"seed0001_step0.5.png", "seed0001_step0.5.html"}


def _good_make_zip(tmp: Path) -> None:
    dest = tmp / "good.zip"
    result = run_cli(["make-zip", faces(tmp), dest, "--quiet"])
    assert result.code == 0, result.stderr
    with zipfile.ZipFile(dest) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 5


# ---------------------------------------------------------------- the table


def _case(id: str, build, expect: str, *, trips=ALL_TRIPS, weights: bool = False, **kw) -> BadInput:
    return BadInput(id, build, expect, extra={"trips": trips, "weights": weights}, **kw)


CASES = [
    # fid / kid / stats: the shared extraction options
    _case("fid-batch-size-zero", lambda t: ["fid", faces(t), faces(t, name="b"), "--batch-size", "0"],
          r"argument --batch-size: must be at least 1, not 0"),
    _case("stats-batch-size-negative", lambda t: ["stats", faces(t), "-o", t / "s.npz", "--batch-size", "-4"],
          r"argument --batch-size: must be at least 1, not -4"),
    _case("fid-device-tpu", lambda t: ["fid", faces(t), faces(t, name="b"), "--device", "tpu"],
          r"argument --device: device must be .*'cuda:N', not 'tpu'"),
    _case("stats-device-cuda-garbage", lambda t: ["stats", faces(t), "-o", t / "s.npz", "--device", "cuda:x"],
          r"argument --device: .*not 'cuda:x'"),
    _case("fid-device-cuda-not-there", lambda t: ["fid", faces(t), faces(t, name="b"), "--device", "cuda:999"],
          r"^error: device 'cuda:999' was requested but .*CUDA device"),
    _case("kid-workers-negative", lambda t: ["kid", faces(t), faces(t, name="b"), "--workers", "-1"],
          r"argument --workers: must be between 0 .* not -1"),
    _case("kid-workers-absurd", lambda t: ["kid", faces(t), faces(t, name="b"), "--workers", "100000"],
          r"argument --workers: must be between 0 .* not 100000"),
    _case("kid-max-images-zero", lambda t: ["kid", faces(t), faces(t, name="b"), "--max-images", "0"],
          r"argument --max-images: must be at least 1, not 0"),
    _case("stats-cache-dir-is-a-file", lambda t: ["stats", faces(t), "-o", t / "s.npz", "--cache-dir", a_file(t)],
          r"argument --cache-dir: .*afile is a file, not a folder", good=_good_stats_then_fid_zero, weights=True),
    _case("stats-cache-dir-under-a-file",
          lambda t: ["stats", faces(t), "-o", t / "s.npz", "--cache-dir", a_file(t) / "cache"],
          r"argument --cache-dir: cannot write .*afile is a file, not a folder"),
    _case("stats-weights-missing", lambda t: ["stats", faces(t), "-o", t / "s.npz", "--weights", t / "nope.pth"],
          r"^error: Inception weights not found at .*nope\.pth"),
    # the two -o cases need `stats -o` checked with fidlens.cli.checks.output_file in its parser block
    _case("stats-output-is-a-folder", lambda t: ["stats", faces(t), "-o", a_folder(t, "out.npz")],
          r"out\.npz is a folder", good=_good_stats_then_fid_zero, weights=True),
    _case("stats-output-parent-is-a-file", lambda t: ["stats", faces(t), "-o", a_file(t) / "s.npz"],
          r"afile is a file, not a folder"),
    # generate
    _case("generate-seed-above-2**32-1",
          lambda t: ["generate", "--network", generator(t), "--seeds", "4294967296", "--outdir", t / "g"],
          r"argument --seeds: seed '4294967296' is larger than 2\*\*32 - 1", good=_good_generate_boundary_seed),
    _case("generate-seed-range-backwards",
          lambda t: ["generate", "--network", generator(t), "--seeds", "5-2", "--outdir", t / "g"],
          r"argument --seeds: seed range '5-2' runs backwards"),
    _case("generate-seed-not-a-number",
          lambda t: ["generate", "--network", generator(t), "--seeds", "a", "--outdir", t / "g"],
          r"argument --seeds: cannot read seeds 'a'"),
    _case("generate-seeds-empty",
          lambda t: ["generate", "--network", generator(t), "--seeds", " , ", "--outdir", t / "g"],
          r"argument --seeds: no seeds given"),
    _case("generate-seed-negative",
          lambda t: ["generate", "--network", generator(t), "--seeds", "-3", "--outdir", t / "g"],
          r"argument --seeds: cannot read seeds '-3'"),
    _case("generate-seeds-four-billion",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0-4294967295", "--outdir", t / "g"],
          r"argument --seeds: the seeds name 4294967296 images; at most 1000000"),
    _case("generate-seed-10**5000",
          lambda t: ["generate", "--network", generator(t), "--seeds", "9" * 5000, "--outdir", t / "g"],
          r"argument --seeds: seed '9{37}\.\.\.' is larger than 2\*\*32 - 1"),
    _case("generate-outdir-is-a-file",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0", "--outdir", a_file(t)],
          r"argument --outdir: .*afile is a file, not a folder"),
    _case("generate-trunc-nan",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0", "--outdir", t / "g", "--trunc", "nan"],
          r"argument --trunc: must be a finite number, not 'nan'"),
    _case("generate-trunc-cutoff-negative",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0", "--outdir", t / "g",
                     "--trunc-cutoff", "-1"],
          r"argument --trunc-cutoff: must be at least 0, not -1"),
    _case("generate-class-negative",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0", "--outdir", t / "g", "--class", "-1"],
          r"argument --class: must be at least 0, not -1"),
    _case("generate-device-tpu",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0", "--outdir", t / "g", "--device", "tpu"],
          r"argument --device: device must be"),
    _case("generate-device-cuda-not-there",
          lambda t: ["generate", "--network", generator(t), "--seeds", "0", "--outdir", t / "g",
                     "--device", "cuda:999"],
          r"^error: device 'cuda:999' was requested but .*CUDA device"),
    # heatmap
    _case("heatmap-outdir-under-a-file",
          lambda t: [*heatmap_args(t), "--images", faces(t), "--outdir", a_file(t) / "maps"],
          r"argument --outdir: cannot write .*afile is a file, not a folder"),
    _case("heatmap-indices-backwards",
          lambda t: [*heatmap_args(t), "--images", faces(t), "--indices", "3-1", "--outdir", t / "maps"],
          r"argument --indices: seed range '3-1' runs backwards"),
    _case("heatmap-index-out-of-range",
          lambda t: [*heatmap_args(t), "--images", faces(t), "--indices", "99", "--outdir", t / "maps"],
          r"^error: image index 99 is out of range: .* has 5 images", trips=("detector", "generator")),
    _case("heatmap-reference-missing",
          lambda t: ["heatmap", "--reference", t / "nope.npz", "--generated", small_stats(t, "gen.npz"),
                     "--images", faces(t), "--outdir", t / "maps"],
          r"^error: statistics file not found: .*nope\.npz"),
    _case("heatmap-network-and-images",
          lambda t: [*heatmap_args(t), "--images", faces(t), "--network", generator(t), "--outdir", t / "maps"],
          r"^error: give either --network with --seeds, or --images with --indices"),
    _case("heatmap-network-missing",
          lambda t: [*heatmap_args(t), "--network", t / "nope.pkl", "--seeds", "1", "--outdir", t / "maps"],
          r"^error: generator file not found: .*nope\.pkl", trips=("detector", "images")),
    # probe
    _case("probe-count-zero", lambda t: ["probe", "--network", generator(t), "--seed", "1", "--count", "0"],
          r"argument --count: must be between 1 and 10000, not 0"),
    _case("probe-step-negative",
          lambda t: ["probe", "--network", generator(t), "--seed", "1", "--step", "-1", "--outdir", t / "p"],
          r"^error: the probe step must be a positive number", good=_good_probe),
    _case("probe-step-nan", lambda t: ["probe", "--network", generator(t), "--seed", "1", "--step", "nan"],
          r"argument --step: must be a finite number, not 'nan'"),
    _case("probe-tile-too-small", lambda t: ["probe", "--network", generator(t), "--seed", "1", "--tile", "8"],
          r"argument --tile: must be between 32 and 4096, not 8"),
    _case("probe-seed-above-2**32-1",
          lambda t: ["probe", "--network", generator(t), "--seed", "4294967296"],
          r"argument --seed: must be between 0 and 4294967295, not 4294967296"),
    _case("probe-sheet-gigapixels",
          lambda t: ["probe", "--network", generator(t), "--seed", "1", "--count", "10000", "--tile", "4096",
                     "--columns", "100", "--outdir", t / "p"],
          r"^error: the contact sheet would be \d+x\d+ px"),
    _case("probe-outdir-is-a-file",
          lambda t: ["probe", "--network", generator(t), "--seed", "1", "--outdir", a_file(t)],
          r"argument --outdir: .*afile is a file, not a folder"),
    # face-rate, make-zip, fetch-inception, assets
    _case("face-rate-max-images-negative", lambda t: ["face-rate", faces(t), "--max-images", "-3"],
          r"argument --max-images: must be at least 1, not -3"),
    _case("make-zip-dest-is-a-folder", lambda t: ["make-zip", faces(t), a_folder(t, "out.zip")],
          r"argument dest: .*out\.zip is a folder", good=_good_make_zip),
    _case("make-zip-dest-parent-is-a-file", lambda t: ["make-zip", faces(t), a_file(t) / "out.zip"],
          r"argument dest: cannot write .*afile is a file, not a folder"),
    _case("make-zip-dest-not-zip", lambda t: ["make-zip", faces(t), t / "out.tar"],
          r"argument dest: .*out\.tar must end in \.zip"),
    _case("make-zip-resolution-zero", lambda t: ["make-zip", faces(t), t / "out.zip", "--resolution", "0"],
          r"argument --resolution: must be between 1 and 16384, not 0"),
    _case("fetch-inception-dest-is-a-folder", lambda t: ["fetch-inception", "--dest", a_folder(t, "weights")],
          r"argument --dest: .*weights is a folder; give a file name"),
    _case("assets-timeout-nan", lambda t: ["assets", "--root", t, "--timeout", "nan"],
          r"argument --timeout: must be a finite number"),
    _case("assets-root-is-a-file", lambda t: ["assets", "--root", a_file(t)],
          r"argument --root: .*afile is not a folder"),
]


def _arm_tripwires(monkeypatch: pytest.MonkeyPatch, trips: tuple[str, ...]) -> None:
    """Make the expensive steps fail loudly: a refusal must come before them."""
    import fidlens.data.datasets
    import fidlens.generators.load
    import fidlens.extraction.pipeline

    def tripwire(what: str):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} before the bad argument was refused")

        return fail

    if "detector" in trips:
        monkeypatch.setattr(fidlens.extraction.pipeline, "load_detector", tripwire("loaded the network"))
    if "generator" in trips:
        monkeypatch.setattr(fidlens.generators.load, "load_generator", tripwire("loaded the generator"))
    if "images" in trips:
        monkeypatch.setattr(fidlens.data.datasets, "open_image_source", tripwire("opened the images"))
        monkeypatch.setattr(fidlens.extraction.pipeline, "open_image_source", tripwire("opened the images"))


@table(CASES)
def test_bad_argument_is_refused_in_one_line_before_the_expensive_work(case, tmp_path, monkeypatch, request):
    if case.extra["weights"]:
        request.getfixturevalue("default_weights")
    _arm_tripwires(monkeypatch, case.extra["trips"])
    check_bad_input(replace(case, good=None), tmp_path)
    monkeypatch.undo()  # the good run uses the real network, generator and images
    if case.good is not None:
        case.good(tmp_path)


def test_the_table_has_distinct_inputs_across_every_subcommand():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) >= 18
    covered = {i.split("-")[0] for i in ids}
    assert covered >= {"fid", "kid", "stats", "generate", "heatmap", "probe", "face", "make", "fetch", "assets"}


# ---------------------------------------------------------------- the last-resort handlers in main()


def _failing_make_zip(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    import fidlens.data.zipbuild

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(fidlens.data.zipbuild, "build_stylegan_zip", fail)


@pytest.mark.parametrize(
    ("exc", "code", "expect"),
    [
        (RuntimeError("boom\nsecond line"), 1,
         r"^error: internal error: RuntimeError: boom second line \(set FIDLENS_DEBUG=1 for the traceback\)$"),
        (RecursionError("maximum recursion depth exceeded"), 1, r"^error: internal error: RecursionError: maximum"),
        (PermissionError(13, "Permission denied", "/srv/data/out.zip"), 2,
         r"^error: Permission denied: /srv/data/out\.zip$"),
        (OSError(28, "No space left on device"), 2, r"^error: No space left on device$"),
        (IsADirectoryError(21, "Is a directory", "/tmp/x"), 2, r"^error: Is a directory: /tmp/x$"),
        (MemoryError(), 2, r"^error: out of memory \(MemoryError\); try a smaller --batch-size"),
    ],
    ids=["bug", "recursion", "permission", "disk-full", "is-a-directory", "memory"],
)
def test_unexpected_exceptions_end_in_one_line_not_a_traceback(exc, code, expect, tmp_path, monkeypatch):
    monkeypatch.delenv("FIDLENS_DEBUG", raising=False)
    _failing_make_zip(monkeypatch, exc)
    case = BadInput(f"make-zip-{type(exc).__name__}", lambda t: ["make-zip", faces(t), t / "out.zip"], expect,
                    code=code)
    result = check_bad_input(case, tmp_path)
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_fidlens_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("FIDLENS_DEBUG", "1")
    _failing_make_zip(monkeypatch, RuntimeError("boom"))
    result = run_cli(["make-zip", faces(tmp_path), tmp_path / "out.zip"])
    assert result.code == -1 and "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr


@pytest.mark.slow
def test_warnings_print_as_one_line_and_only_during_the_command(tmp_path):
    """In a real process (pytest records warnings itself): `warning: ...` lines, no source lines."""
    script = (
        "import sys, warnings\n"
        "import fidlens.data.zipbuild as z\n"
        "def warn_twice(source, dest, **kw):\n"
        "    warnings.warn('first\\nsecond', UserWarning)\n"
        "    warnings.warn('odd value', RuntimeWarning)\n"
        "    return {'num_images': 0, 'resolution': None, 'resize_filter': None}\n"
        "z.build_stylegan_zip = warn_twice\n"
        "from fidlens.cli.main import main\n"
        "before = warnings.formatwarning\n"
        "code = main(['make-zip', sys.argv[1], sys.argv[2]])\n"
        "assert warnings.formatwarning is before, 'the CLI format was left behind'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(faces(tmp_path)), str(tmp_path / "out.zip")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["warning: first second", "warning: RuntimeWarning: odd value"]


def test_help_and_version_return_zero():
    assert run_cli(["--version"]).code == 0
    assert run_cli(["generate", "--help"]).code == 0


# ---------------------------------------------------------------- the pieces the table relies on


def test_device_grammar_is_one_function():
    from fidlens.core.device_spec import DEVICE_SPEC_PATTERN, parse_device_spec

    assert [parse_device_spec(s) for s in ("auto", "cpu", "cuda", "cuda:0", "cuda:01", " cpu ")] == [
        "auto", "cpu", "cuda", "cuda:0", "cuda:1", "cpu"]
    for bad in ("tpu", "", "CUDA", "cuda:", "cuda:-1", "cuda:1:2", "gpu", "mps", "cpu\n0", None, 0):
        with pytest.raises(FidlensError, match="device must be"):
            parse_device_spec(bad)
    assert re.fullmatch(DEVICE_SPEC_PATTERN, "cuda:3") and not re.fullmatch(DEVICE_SPEC_PATTERN, "tpu")


def test_check_device_refuses_a_cuda_device_that_is_not_there(monkeypatch):
    from fidlens.detectors.features import check_device, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == "cuda:1"
    with pytest.raises(FidlensError, match=r"only 2 CUDA device\(s\) are visible \(cuda:0 to cuda:1\)"):
        check_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FidlensError, match="no CUDA device is visible"):
        pick_device("cuda")
    assert pick_device("cpu") == torch.device("cpu") and pick_device("", log=lambda _: None) == torch.device("cpu")


def test_seed_bounds_and_count_are_checked_before_a_list_is_built():
    from fidlens.generators.generate import MAX_SEEDS_PER_RUN, parse_seeds

    assert parse_seeds("4294967295") == [4294967295]
    assert parse_seeds("0-2,,7,") == [0, 1, 2, 7]
    assert len(parse_seeds(f"0-{MAX_SEEDS_PER_RUN - 1}")) == MAX_SEEDS_PER_RUN
    for bad, message in [("4294967296", "larger than"), (f"0-{MAX_SEEDS_PER_RUN}", "at most"),
                         ("1e3", "cannot read"), ("٣", "cannot read"), ("0x10", "cannot read")]:
        with pytest.raises(FidlensError, match=message):
            parse_seeds(bad)


def test_default_workers_follow_the_cores_this_process_may_use(monkeypatch):
    import os

    from fidlens.detectors import features

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert features.available_cpus() == 2 and features.default_workers() == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(12)), raising=False)
    assert features.default_workers() == 6


def test_output_checks_accept_what_can_be_written(tmp_path):
    from fidlens.cli.checks import check_output_dir, check_output_file

    assert check_output_file(tmp_path / "new" / "deeper" / "x.npz", suffixes=(".npz",)).name == "x.npz"
    assert check_output_dir(tmp_path / "fresh" / "dir") == tmp_path / "fresh" / "dir"
    assert not (tmp_path / "new").exists() and not (tmp_path / "fresh").exists()  # checking creates nothing
    (tmp_path / "old.npz").write_bytes(b"x")
    check_output_file(tmp_path / "old.npz")  # replacing an existing file is fine
    with pytest.raises(FidlensError, match="is a folder"):
        check_output_file(f"{tmp_path / 'missing'}/")
    with pytest.raises(FidlensError, match=r"cannot write .*: File name too long"):
        check_output_file(tmp_path / ("x" * 5000))
