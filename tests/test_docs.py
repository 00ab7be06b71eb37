"""The documentation site (docs/, `make docs`): the built HTML holds every public name, each command's --help,
the tutorials' figures, and no broken internal link.

`make test` builds the site (with the tutorials executed) into docs/_build/html before pytest; these tests read
that build when it is newer than the sources. Otherwise (pytest run alone, or a stale build) the site is built
once into a temporary folder without executing the tutorials (CH3D_DOCS_EXECUTE=False: their figure check then
skips), with warnings as errors as `make docs` does. Without Sphinx installed (the `docs` extra) the tests skip.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILT = DOCS / "_build" / "html"

#: what the site is built from: a build older than any of these is stale
SOURCES = [
    *(p for p in DOCS.rglob("*") if p.is_file() and not p.is_relative_to(DOCS / "_build")),
    *(p for pkg in ("ch_numba", "surrogate", "export") for p in (ROOT / pkg).rglob("*.py")),
    ROOT / "CHANGELOG.md",
    ROOT / "models" / "README.md",
]
SOURCES = [
    p
    for p in SOURCES
    if not p.is_relative_to(DOCS / "auto_tutorials")
    and "__pycache__" not in p.parts
    and p.name != "sg_execution_times.rst"
]

#: the entries the issue names (id anchors of the API pages)
KEY_ENTRIES = ["ch_numba.CHParams", "ch_numba.evolve", "ch_numba.open_dataset", "surrogate.CRNN", "export.Rollout"]

#: (parser factory, prog) of each command the CLI page renders
COMMANDS = [
    ("ch_numba.cli:build_parser", "python -m ch_numba"),
    ("surrogate.cli:build_parser", "python -m surrogate"),
    ("export.__main__:build_parser", "python -m export"),
    ("export.rollout:build_parser", "python -m export.rollout"),
]


def _fresh(site: Path) -> bool:
    index = site / "index.html"
    if not index.exists() or not (site / "_ch3d_build.json").exists():
        return False
    built = index.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in SOURCES if p.exists())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site: docs/_build/html when fresh, else a build into a temporary folder (tutorials not run)."""
    if _fresh(BUILT):
        return BUILT
    pytest.importorskip("sphinx", reason="Sphinx is not installed (pip install -e '.[docs]'): the site is not built")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, CH3D_DOCS_EXECUTE="False", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-E"]
    run = subprocess.run(
        [*cmd, "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, f"the docs build failed (warnings are errors):\n{run.stderr[-6000:]}"
    return out / "html"


class _Page(HTMLParser):
    """The ids, links (href/src) and <pre> texts of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.pre: list[str] = []
        self.images: list[tuple[str, str]] = []  # (src, class)
        self._pre_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag in ("a", "link") and a.get("href"):
            self.links.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.links.append(a["src"])
        if tag == "img" and a.get("src"):
            self.images.append((a["src"], a.get("class") or ""))
        if tag == "pre":
            self._pre_depth += 1
            self.pre.append("")

    def handle_endtag(self, tag):
        if tag == "pre":
            self._pre_depth -= 1

    def handle_data(self, data):
        if self._pre_depth:
            self.pre[-1] += data


_pages: dict[Path, _Page] = {}


def page(path: Path) -> _Page:
    if path not in _pages:
        parsed = _Page()
        parsed.feed(path.read_text(encoding="utf-8"))
        _pages[path] = parsed
    return _pages[path]


def _words(text: str) -> str:
    return " ".join(html.unescape(text).split())


def test_key_api_entries(site):
    """The API pages hold an entry (an id anchor) for CHParams, evolve, open_dataset, CRNN and Rollout."""
    ids = set().union(*(page(p).ids for p in (site / "api").glob("*.html")))
    assert not [name for name in KEY_ENTRIES if name not in ids], sorted(i for i in ids if "." in i)[:50]
    # cross-references between pages land on them (the CLI page and the export page name CHParams and CRNN)
    links = page(site / "cli.html").links + page(site / "api" / "export.html").links
    assert "api/ch_numba.html#ch_numba.CHParams" in links
    assert "surrogate.html#surrogate.CRNN" in links


def test_every_public_name_documented(site):
    """Every name of the packages' __all__ (and of ch_numba.initial and export.runtime) is an API entry."""
    ids = set().union(*(page(p).ids for p in (site / "api").glob("*.html")))
    missing = []
    for package in ("ch_numba", "ch_numba.initial", "surrogate", "export", "export.runtime"):
        module = importlib.import_module(package)
        for name in module.__all__:
            if f"{package}.{name}" not in ids and f"module-{package}.{name}" not in ids:
                missing.append(f"{package}.{name}")
    assert not missing, f"public names without an entry on the API pages: {missing}"


def test_cli_page_holds_every_help(site):
    """The CLI page holds each command's and subcommand's --help as the parser prints it (80 columns)."""
    import argparse

    text = _words(" ".join(page(site / "cli.html").pre))
    missing = []

    def check(parser: argparse.ArgumentParser, prog: str):
        parser.prog = prog
        if hasattr(parser, "color"):
            parser.color = False
        formatter = parser.formatter_class  # the page shows the help of an 80-column terminal (wrapping differs)
        parser.formatter_class = lambda prog: formatter(prog, width=80)
        if _words(parser.format_help()) not in text:
            missing.append(prog)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in {id(s): (n, s) for n, s in reversed(action.choices.items())}.values():
                    check(sub, f"{prog} {name}")

    for spec, prog in COMMANDS:
        module, _, attr = spec.partition(":")
        check(getattr(importlib.import_module(module), attr)(), prog)
    assert not missing, f"the CLI page lacks the --help of {missing} (rebuild: make docs)"
    ids = page(site / "cli.html").ids
    assert {"cli-ch-numba-generate", "cli-surrogate-train", "cli-export", "cli-export-rollout"} <= ids


def test_tutorials_show_their_figures(site):
    """Each tutorial is a page; executed, each holds at least one figure, and the image files exist."""
    scripts = sorted(p.stem for p in (DOCS / "tutorials").glob("tutorial_*.py"))
    assert scripts, "no tutorials in docs/tutorials"
    pages = {p.stem: p for p in (site / "auto_tutorials").glob("tutorial_*.html")}
    assert sorted(pages) == scripts
    if not json.loads((site / "_ch3d_build.json").read_text())["tutorials_executed"]:
        pytest.skip("tutorials not executed in this build (CH3D_DOCS_EXECUTE=False); `make docs` runs them")
    for name, path in pages.items():
        figures = [src for src, cls in page(path).images if "sphx-glr" in cls]
        assert figures, f"{name}: no figure on its page"
        for src in figures:
            assert (path.parent / unquote(src)).is_file(), f"{name}: missing image {src}"
        if site == BUILT:  # every figure its run drew (sphinx-gallery keeps them beside the sources) is shown
            drawn = {p.name for p in (DOCS / "auto_tutorials" / "images").glob(f"sphx_glr_{name}_[0-9]*.png")}
            assert drawn <= {Path(unquote(src)).name for src in figures}, f"{name}: figures not on its page"


def test_no_broken_internal_link(site):
    """Every relative link and image of every page points to an existing file, and its #anchor to an id there."""
    broken = []
    pages = sorted(site.rglob("*.html"))
    for path in pages:
        for link in page(path).links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # external (http, https, mailto, data)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(site)}: {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in page(target).ids:
                    broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])


def test_site_pages_exist(site):
    """The pages of the issue: home, install, quick start, tutorials, GPU, API, CLI, formats, embedding,
    report, card, performance, guide, changelog; and the search page."""
    for name in (
        "index",
        "install",
        "quickstart",
        "auto_tutorials/index",
        "gpu",
        "api/index",
        "cli",
        "formats",
        "embedding",
        "report",
        "card",
        "performance",
        "guide",
        "changelog",
        "search",
    ):
        assert (site / f"{name}.html").is_file(), name
    assert (site / "searchindex.js").is_file()
    # the equations render offline: MathJax ships with the site and the pages load it from there
    scripts = [src for src in page(site / "api" / "ch_numba.html").links if "mathjax" in src.lower()]
    assert scripts and not any(urlsplit(src).scheme for src in scripts), scripts
    assert (site / "api" / unquote(urlsplit(scripts[0]).path)).is_file()
