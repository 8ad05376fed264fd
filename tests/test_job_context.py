"""The job context every workflow script runs in: its log, its threads, and provenance on success only.

A fake ``snakemake`` object stands in for Snakemake's (the attributes a script reads). The last
tests read each script under scripts/ and check that it runs in the context and reads
``snakemake`` only where it parses its job, so no script can forget its log or its records.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO

from fidlens.workflow.jobs import job
from fidlens.workflow.provenance import provenance_path

NOT_JOBS = {"docs_figures.py"}  # `make docs-figures`, run by hand: no Snakemake job
SCRIPTS = sorted(p for p in (REPO / "scripts").glob("*.py") if p.name not in NOT_JOBS)


def fake_job(tmp_path: Path, **overrides) -> SimpleNamespace:
    source = tmp_path / "in" / "table.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("a\n1\n")
    values = dict(input=[str(source)], output=[str(tmp_path / "out" / "t.csv"), str(tmp_path / "out" / "images"),
                                               str(tmp_path / "out" / "d.npz")],
                  params={"level": 2}, wildcards={"set": "blur"}, threads=2, rule="a_rule",
                  log=[str(tmp_path / "logs" / "a.log")], scriptdir=None)
    values.update(overrides)
    return SimpleNamespace(**values)


def write_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "t.csv").write_text("x\n1\n")
    (out / "d.npz").write_bytes(b"npz")
    (out / "images" / "face0.png").write_bytes(b"png")


def test_a_job_logs_and_records_its_tables_and_figures(tmp_path):
    snakemake = fake_job(tmp_path)
    run = tmp_path / "run"
    with job(snakemake) as ctx:
        print("hello from the job")
        write_outputs(tmp_path)
        (run / "sub").mkdir(parents=True)
        (run / "sub" / "curve.png").write_bytes(b"png")
        (run / "summary.json").write_text("{}")
        ctx.also_record(run)
    assert (ctx.rule, ctx.threads, ctx.log) == ("a_rule", 2, snakemake.log[0])
    log = Path(snakemake.log[0]).read_text()
    assert "hello from the job" in log and "finished in" in log and "error" not in log
    out = tmp_path / "out"
    record = json.loads(provenance_path(out / "t.csv").read_text())
    assert record["rule"] == "a_rule" and record["params"] == {"level": 2} and record["threads"] == 2
    assert record["wildcards"] == {"set": "blur"} and record["inputs"][0]["path"].endswith("table.csv")
    assert record["output"]["path"] == str(out / "t.csv")
    assert provenance_path(run / "sub" / "curve.png").is_file()  # a folder the script named
    assert not provenance_path(run / "summary.json").exists()  # data, not a table or figure
    assert not provenance_path(out / "d.npz").exists()
    # a declared folder (a set of images) gains no files
    assert sorted(p.name for p in (out / "images").iterdir()) == ["face0.png"]


def test_record_names_folders_up_front(tmp_path):
    run = tmp_path / "run"
    with job(fake_job(tmp_path, output=[]), record=[run]):
        run.mkdir()
        (run / "grid.png").write_bytes(b"png")
    assert provenance_path(run / "grid.png").is_file()


def test_a_failed_job_logs_its_error_and_records_nothing(tmp_path):
    snakemake = fake_job(tmp_path)
    with pytest.raises(ValueError, match="went wrong"), job(snakemake):
        write_outputs(tmp_path)
        raise ValueError("it went wrong")
    assert "error: it went wrong" in Path(snakemake.log[0]).read_text()
    assert not provenance_path(tmp_path / "out" / "t.csv").exists()


def test_the_rule_threads_reach_torch_when_the_job_loaded_it(tmp_path):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        with job(fake_job(tmp_path, threads=1, output=[])):
            assert torch.get_num_threads() == 1
        with job(fake_job(tmp_path, threads=2, output=[])):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_job_without_a_log_still_records(tmp_path, capsys):
    snakemake = fake_job(tmp_path, log=[])
    with job(snakemake) as ctx:
        write_outputs(tmp_path)
        print("to the console")
    assert ctx.log is None and "to the console" in capsys.readouterr().out
    assert provenance_path(tmp_path / "out" / "t.csv").is_file()


def test_the_job_context_works_where_torch_is_not_installed(tmp_path):
    """Data and plot jobs run in envs without torch: logging and provenance must not need it."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from types import SimpleNamespace

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("no torch here")
                return None

        sys.meta_path.insert(0, NoTorch())
        from fidlens.workflow.jobs import job

        tmp = Path(sys.argv[1])
        snakemake = SimpleNamespace(input=[], output=[str(tmp / "t.csv")], params={}, wildcards={}, threads=2,
                                    rule="r", log=[str(tmp / "r.log")], scriptdir=None)
        with job(snakemake):
            (tmp / "t.csv").write_text("a\\n")
        record = (tmp / "t.csv.provenance.json").read_text()
        assert '"torch_threads": null' in record, record
        assert "torch" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr


# --- every workflow script uses it ---------------------------------------------------------------

def _main_block(tree: ast.Module) -> ast.If | None:
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'":
            return node
    return None


def _uses_job_context(block: ast.If) -> bool:
    for node in ast.walk(block):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "job" and call.args
                        and getattr(call.args[0], "id", None) == "snakemake"):
                    return True
    return False


def script_problems(path: Path) -> list[str]:
    """What keeps the script at PATH from being a thin job: [] when it is one."""
    tree = ast.parse(path.read_text())
    block = _main_block(tree)
    if block is None:
        return ["no `if __name__ == \"__main__\":` block"]
    problems = []
    if not _uses_job_context(block):
        problems.append("its __main__ block does not run `with job(snakemake...)`")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("logged", "record_job_provenance"):
                problems.append(f"calls {name}() by hand (line {node.lineno})")
    inside_main = {id(n) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "snakemake" and id(node) not in inside_main:
            problems.append(f"reads `snakemake` outside its __main__ block (line {node.lineno})")
    return problems


def test_the_script_list_is_not_empty():
    names = {p.name for p in SCRIPTS}
    assert {"heatmaps.py", "features.py", "statistics.py", "resample.py", "place_dataset.py"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_workflow_script_runs_in_the_job_context(script):
    assert script_problems(script) == []


def test_the_script_check_can_fail(tmp_path):
    old = tmp_path / "old.py"
    old.write_text(textwrap.dedent("""
        from fidlens.workflow.jobs import logged
        from fidlens.workflow.provenance import record_job_provenance

        def main(log):
            with logged(log):
                print(snakemake.params.x)

        if __name__ == "__main__":
            main(snakemake.log[0])
            record_job_provenance(snakemake)
    """))
    problems = script_problems(old)
    assert any("does not run `with job" in p for p in problems)
    assert any("logged()" in p for p in problems) and any("record_job_provenance()" in p for p in problems)
    assert any("outside its __main__ block (line 7)" in p for p in problems)
    bare = tmp_path / "bare.py"
    bare.write_text("print('no main')\n")
    assert script_problems(bare) == ["no `if __name__ == \"__main__\":` block"]
