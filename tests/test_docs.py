"""The README and the docs pages cite only what exists: files, links, modules, make targets, verbs.

A page that names a moved module or a renamed test sends a reader nowhere; these checks fail as soon as
a cited path, a linked page, a ``tinyvoc.*`` name, a ``make`` target or a ``tinyvoc`` verb no longer
exists, and when the README grows back into a lab notebook (about 200 lines at most).
"""

import importlib
import re
from dataclasses import dataclass, field
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


# --- what the pages say of the code: the messages they quote, the defaults they state ---------------------------

PACKAGE = REPO / "notebooks" / "tinyvoc"
# Where a page's quote stands for a value the code fills in: "...", and the placeholders the pages use.
PAGE_HOLE = re.compile(r"\.\.\.|…|\b(?:NAME|N|M|K|X|NNNNNNN|KKKKKKK)\b")
# Text the operating system or a library puts into our messages (a hole in our code), quoted as they read.
NOT_OURS = ("[Errno 107] Transport endpoint is not connected", "[Errno 28] No space left on device")
PUNCTUATION = re.compile(r"[,;:()\[\]{}\"'`=<>!?]|\.(?:\s|$)")


def _runs_of_words(text: str) -> list[list[str]]:
    """Runs of plain words, cut at punctuation and at anything a program fills in (a number, a path, a name)."""
    runs = []
    for segment in PUNCTUATION.split(text):
        run = []
        for word in segment.split():
            if re.fullmatch(r"[A-Za-z][a-z]*(?:-[a-z]+)*", word):
                run.append(word)
            else:
                runs.append(run)
                run = []
        runs.append(run)
    return [r for r in runs if r]


@dataclass
class Printable:
    """What the package's strings can print, as words: every word, every pair of neighbours within a string, and
    the words that end or start a string (where a message is put together from several, a pair may span two)."""

    words: set = field(default_factory=set)
    pairs: set = field(default_factory=set)
    ends: set = field(default_factory=set)
    starts: set = field(default_factory=set)

    def add(self, text: str) -> None:
        for run in _runs_of_words(text):
            self.words.update(run)
            self.pairs.update(zip(run, run[1:]))
            self.ends.add(run[-1])
            self.starts.add(run[0])

    def unprintable(self, quote: str) -> list[str]:
        """The words of ``quote`` no string has, and the neighbours no string (or no two strings) put together."""
        for text in NOT_OURS:
            quote = quote.replace(text, "...")
        bad = []
        for chunk in PAGE_HOLE.split(quote):
            for run in _runs_of_words(chunk):
                bad += [w for w in run if w not in self.words]
                bad += [f"{a} {b}" for a, b in zip(run, run[1:])
                        if (a, b) not in self.pairs and not (a in self.ends and b in self.starts)]  # fmt: skip
        return bad


def printable() -> Printable:
    """Every string of the package (an f-string's literal parts each on its own: ``{...}`` is filled in)."""
    import ast

    known = Printable()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                known.add(node.value)
    return known


def quoted_messages(page: Path) -> list[str]:
    """The quotes in the first column of a page's table headed "the message says": what our code prints."""
    quotes, in_table = [], False
    for line in page.read_text().splitlines():
        if line.startswith("| the message says"):
            in_table = True
        elif in_table and line.startswith("| ") and not line.startswith("| ---"):
            quotes += CODE_SPAN.findall(line.split(" | ")[0])
        elif not line.startswith("|"):
            in_table = False
    return quotes


def test_every_quoted_message_is_one_the_code_can_print():
    """docs/troubleshooting.md's messages, word by word: each word and each pair of neighbours is in the package's
    strings, or a pair spans two strings a message is made of (values, paths and names are the code's to fill)."""
    quotes = quoted_messages(REPO / "docs" / "troubleshooting.md")
    assert len(quotes) > 30
    known = printable()
    bad = {q: b for q in quotes if (b := known.unprintable(q))}
    assert not bad, f"docs/troubleshooting.md quotes what the code does not print: {bad}"


def test_the_message_check_catches_a_changed_message():
    known = Printable()
    for text in ("Uploads that never finished in ", " (a full Drive or a disconnect in the previous runtime): ",
                 "Training at iteration ", " of ", "the disk or the Drive quota is full", " stopped: "):  # fmt: skip
        known.add(text)
    good = "Uploads that never finished in .../output/runs/NAME (a full Drive or a disconnect in the previous runtime)"
    assert not known.unprintable(good)
    assert not known.unprintable("Training at iteration N of 3 stopped: the disk or the Drive quota is full")
    assert known.unprintable("Uploads that never finished in .../train (a full Drive or a broken cable)")
    assert known.unprintable("Training at iteration N of M stopped: the disk quota is full") == ["disk quota"]


SETTING_VALUE = re.compile(r"`([A-Z][A-Z0-9_]+) = ([^`]+)`")


def test_every_default_a_page_states_is_the_declared_one():
    """A page writing `NAME = value` in a sentence that calls it the default states the declared default
    (core/settings.py) of one of the notebooks that take NAME."""
    import ast

    from tinyvoc.core.paths import NOTEBOOKS
    from tinyvoc.core.settings import BY_NAME

    stated, wrong = 0, []
    for page in PAGES:
        text = re.sub(r"\s+", " ", page.read_text())
        for sentence in re.split(r"(?<=[.;!?])\s|\|", text):
            if "default" not in sentence:
                continue
            for name, value in SETTING_VALUE.findall(sentence):
                setting = BY_NAME.get(name)
                if setting is None:
                    continue
                try:
                    value = ast.literal_eval(value.split("  #")[0].strip())
                except (ValueError, SyntaxError):
                    continue
                defaults = [setting.default_in(n) for n in NOTEBOOKS if setting.declared_in(n)]
                stated += 1
                if value not in defaults and re.search(rf"`{name} = [^`]+`[^.;]*\bdefault\b", sentence):
                    wrong.append(f"{page.name}: {name} = {value!r} (declared {defaults})")
    assert stated >= 3 and not wrong, wrong


def test_the_citation_names_this_version_and_repository():
    import tomllib

    from tinyvoc.core.settings import default

    citation = (REPO / "CITATION.cff").read_text()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"\nversion: {version}\n" in citation
    assert f'repository-code: "{default("REPO_URL").removesuffix(".git")}"' in citation
