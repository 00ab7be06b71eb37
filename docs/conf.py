"""Sphinx configuration of the ch3d site (`make docs` -> docs/_build/html).

Sphinx, not MkDocs: autodoc reads the docstrings in place (they carry the equations, shapes and units),
sphinx-gallery executes the tutorials at build time and turns their figures into pages (as py-pde and
neuraloperator do), MyST lets the existing Markdown (report, model card, GUIDE, CHANGELOG) be pages as they
are, and the CLI reference is rendered from the argparse parsers by docs/_ext/cli_reference.py.
Warnings are errors (`make docs` passes -W) and every cross-reference must resolve (nitpicky).
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")
# the tutorials' commands (subprocesses) import this checkout, not whatever ch3d the venv holds
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

project = "ch3d"
author = "the ch3d developers"
copyright = "2026, the ch3d developers"
from ch_numba import __version__ as release  # noqa: E402

version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "cli_reference",
    "lazy_names",
]
# MathJax shipped with the site (sphinx-mathjax-offline, the docs extra; its module name has hyphens): the
# equations render without a CDN, as in a browser on an offline cluster node
extensions.append("sphinx-mathjax-offline")

# literal blocks without a language (the docstrings' equations and tables after "::") are not Python: plain
highlight_language = "none"

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "REPRODUCTION.md",  # a page through report.md
    "GUIDE.md",  # a page through guide.md
    "data",
    "results",
    "repro",
    "figures",
    "tutorials/README.txt",
    "auto_tutorials/*.ipynb",
    "auto_tutorials/*.py",
    "auto_tutorials/*.zip",
    "auto_tutorials/*.md5",
    "sg_execution_times.rst",
]

# single backticks in the docstrings name parameters and values: code, not cross-references
default_role = "literal"
nitpicky = True
# Only names outside this project: the standard library, numpy, torch and onnxruntime have no inventory here
# (intersphinx is off without the network, below); every ch3d name must resolve
nitpick_ignore_regex = [
    (r"py:(class|obj|data)", r"(pathlib|os|collections\.abc|typing|argparse|numpy|np|torch|onnxruntime)\..+"),
    (r"py:(class|obj)", r"(ndarray|ArrayLike|DTypeLike|Tensor|Generator|Module)"),
]

autodoc_member_order = "bysource"
# an override without a docstring (CRNN.extra_repr) is not documented with torch's text for the base method
autodoc_inherit_docstrings = False
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
autosummary_generate = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# The docstrings' types are prose ("(X, Y, Z) tuple of positive ints", "float in [0, 1]", "int ≥ 1"): shown as
# written, not split into cross-references to classes named "X" or "float in"; a type that is a class is linked
# in the docstring itself (:class:`CHParams`)
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # Attributes as one compact field list, as Parameters

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
}
# intersphinx needs the network; CI and this machine reach only package registries: off unless asked for
if not os.environ.get("CH3D_DOCS_INTERSPHINX"):
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(DOCS / "tutorials"),
    "gallery_dirs": str(DOCS / "auto_tutorials"),
    "filename_pattern": r"/tutorial_",  # every tutorial is executed at build time
    "ignore_pattern": r"/_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),  # no "Out: Text(...)" of a script's last expression: the tutorials print what they show
    "abort_on_example_error": True,
    "plot_gallery": os.environ.get("CH3D_DOCS_EXECUTE", "True"),
}

html_theme = "furo"
html_title = f"ch3d {release}"
html_static_path = []
html_show_sourcelink = False


def _record_build(app, exception):
    """``_ch3d_build.json`` in the output: whether the tutorials were executed (tests/test_docs.py reads it)."""
    if exception is None and app.builder.format == "html":
        import json

        executed = str(sphinx_gallery_conf["plot_gallery"]).lower() not in ("false", "0", "no")
        (Path(app.outdir) / "_ch3d_build.json").write_text(json.dumps({"tutorials_executed": executed}) + "\n")


def setup(app):
    app.connect("build-finished", _record_build)
