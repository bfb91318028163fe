"""The README and the docs pages cite only what exists: files, links, modules, make targets, verbs.

A page that names a moved module or a renamed test sends a reader nowhere; these checks fail as soon as
a cited path, a linked page, a ``tinyvoc.*`` name, a ``make`` target or a ``tinyvoc`` verb no longer
exists, and when the README grows back into a lab notebook (about 200 lines at most).
"""

import importlib
import re
from pathlib import Path

import pytest

from tinyvoc.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Top-level folders whose files a page may cite by path; output/ and data/ hold what runs make or users bring.
CITABLE = ("notebooks/", "tests/", "benchmarks/", "docs/", ".ci/")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _spans(page: Path) -> list[str]:
    return CODE_SPAN.findall(page.read_text())


def _cited_paths(page: Path) -> set[str]:
    cited = set()
    for span in _spans(page):
        for word in span.split():
            word = word.strip("`'\",;:()")
            word = word.split("::")[0]  # tests/x.py::test_name
            if word.startswith(CITABLE) and not re.search(r"[*<>{}]|NN", word):
                cited.add(word.rstrip("/."))
    return cited


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_paths_exist(page):
    missing = sorted(p for p in _cited_paths(page) if not (REPO / p).exists())
    assert not missing, f"{page.name} cites paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.name} links to missing files: {broken}"


def _resolves(dotted: str) -> bool:
    """``tinyvoc.a.b`` is a module, or a module's attribute (``tinyvoc.inference.selection.Selection``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_modules_exist(page):
    names = {m for span in _spans(page) for m in re.findall(r"\btinyvoc(?:\.\w+)+", span)}
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, f"{page.name} cites tinyvoc names that do not exist: {missing}"


def test_cited_make_targets_and_verbs_exist():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.M))
    subparsers = next(a for a in build_parser()._actions if a.dest == "verb")
    verbs = set(subparsers.choices)
    bad = []
    for page in PAGES:
        for span in _spans(page):
            bad += [f"{page.name}: make {t}" for t in re.findall(r"^make ([\w-]+)", span) if t not in targets]
            bad += [
                f"{page.name}: tinyvoc {v}"
                for v in re.findall(r"(?:^|/|&& )tinyvoc ([a-z][\w-]*)", span)
                if v not in verbs
            ]
    assert not bad, f"cited but not defined: {bad}"


def test_readme_is_short_and_indexes_every_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200, "the README is for a five-minute read; move detail into docs/"
    linked = set(LINK.findall(text))
    unlinked = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"
