"""The tree shows the design: stages layered by pyproject.toml's import-linter contract, no import cycle,
nothing editing the import path, and an installed ``tinyvoc`` command that works from any folder."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tinyvoc.core.paths import checkout

REPO = checkout()
PACKAGE = REPO / "notebooks" / "tinyvoc"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(config: Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env
    )


def test_the_import_contracts_hold():
    proc = lint_imports(REPO / "pyproject.toml", REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("dataset/record.py", "from ..inference import cached_predictions", "Pipeline stages are layered"),
        ("core/rle.py", "from ..runtime import colab", "Pipeline stages are layered"),
        ("submission/check.py", "from ..dataset import check as dataset_check", "The two checkers stand alone"),
        ("training/budget.py", "import torch", "run without torch and detectron2"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, line, contract):
    """A copy of the package with one forbidden import added: ``lint-imports`` names the broken contract."""
    copy = tmp_path / "tinyvoc"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    text = target.read_text()
    head, _, body = text.partition("from __future__ import annotations\n")
    target.write_text(f"{head}from __future__ import annotations\n{line}\n{body}")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}  # the copy, not the installed package
    proc = lint_imports(tmp_path / "pyproject.toml", tmp_path, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"{re.escape(contract)}.* BROKEN", proc.stdout.replace("\n", " ")), proc.stdout


def test_no_import_cycle_between_any_two_modules():
    graph = grimp.build_graph("tinyvoc", cache_dir=None)
    modules = sorted(graph.modules)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert cycles == [], cycles
    assert len(modules) > 30  # the graph really holds the package


def test_nothing_edits_the_import_path():
    pattern = re.compile(r"sys\.path\b|syspath_prepend|site\.addsitedir")
    found = []
    for folder in ("notebooks", "tests", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in (".py", ".ipynb", ".sh") and path != Path(__file__):
                found += [f"{path.relative_to(REPO)}:{n}" for n, t in enumerate(path.read_text().splitlines(), 1)
                          if pattern.search(t)]  # fmt: skip
    assert found == []


def test_the_command_works_from_any_folder(tmp_path):
    for command in ([str(Path(sys.executable).parent / "tinyvoc")], [sys.executable, "-m", "tinyvoc"]):
        proc = subprocess.run([*command, "--help"], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        for verb in ("install", "register", "train", "visualize", "export", "run-all", "validate", "check-dataset"):
            assert verb in proc.stdout, verb
