"""Cross-references that resolve by object identity: the packages' lazy (PEP 562) names.

Each public name is documented once, under the name a user imports it by (``ch_numba.CHParams``,
``export.Rollout``), while the docstrings name the same objects where they are defined
(``ch_numba.params.CHParams``, ``Rollout.reset`` inside :mod:`export.runtime.session`) or re-exported
(``export.runtime.Rollout``, ``ch_numba.dataset.read_frame``). Sphinx matches names only, so such a
reference would not find its entry. This extension, on ``missing-reference``, imports what the target
names (relative to the reference's module and class, then to the packages above it) and links it to the
entry documenting the same Python object. A target that names an undocumented object stays a warning
(``-W`` fails the build): nothing is silenced here.

Data (numbers, tuples) match by identity only when the last name component agrees too, so that an
equal constant elsewhere is never taken for the documented one.

It also fills the docstring of a lazy data name (``export.runtime.PROVIDERS``), which the package's
``__init__`` does not define, from the ``#:`` comment at its definition.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import types

from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

logger = logging.getLogger(__name__)

_MISSING = object()
_PROJECT = ("ch_numba", "surrogate", "export")


def _import(dotted: str):
    """The object a dotted name denotes (module attributes and class members), or _MISSING."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        for attr in parts[i:]:
            try:
                obj = inspect.getattr_static(obj, attr) if isinstance(obj, type) else getattr(obj, attr)
            except AttributeError:
                return _MISSING
        return obj
    return _MISSING


def _linkable(obj) -> bool:
    """Objects whose identity names them (not numbers, strings or tuples, which compare by value)."""
    return isinstance(
        obj,
        (
            types.ModuleType,
            type,
            types.FunctionType,
            types.BuiltinFunctionType,
            property,
            classmethod,
            staticmethod,
        ),
    )


def _documented(env) -> dict[int, list[tuple[str, object]]]:
    """id(object) -> [(documented name, domain entry)], built once per build from the Python domain."""
    cache = getattr(env, "_ch3d_documented", None)
    if cache is not None and cache[0] == len(env.get_domain("py").objects):
        return cache[1]
    by_id: dict[int, list] = {}
    for name, entry in env.get_domain("py").objects.items():
        if entry.aliased:
            continue
        obj = _import(name)
        if obj is not _MISSING:
            by_id.setdefault(id(obj), []).append((name, entry, obj))
    env._ch3d_documented = (len(env.get_domain("py").objects), by_id)
    return by_id


def _candidates(target: str, modname: str | None, clsname: str | None):
    target = target.lstrip(".~")
    yield target
    prefixes = []
    if modname:
        parts = modname.split(".")
        prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    for prefix in prefixes:
        if clsname:
            yield f"{prefix}.{clsname}.{target}"
        yield f"{prefix}.{target}"


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    documented = _documented(env)
    for candidate in _candidates(target, node.get("py:module"), node.get("py:class")):
        obj = _import(candidate)
        if obj is _MISSING:
            continue
        for name, entry, _ in documented.get(id(obj), ()):
            if not _linkable(obj) and name.rsplit(".", 1)[-1] != candidate.rsplit(".", 1)[-1]:
                continue
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
        break  # the target names an object that no entry documents: leave the warning
    return None


def lazy_data_doc(app, what, name, obj, options, lines):
    """A lazy data name's docstring: the ``#:`` comment where the package's lazy table says it is defined."""
    if what != "data":
        return
    text = "\n".join(lines).strip()
    if text and text != (inspect.getdoc(type(obj)) or "").strip():
        return
    del lines[:]  # nothing, or the docstring of the value's type (tuple, float): not this name's
    package, _, attr = name.rpartition(".")
    # the module that defines the name: where the package's lazy table points, else any module of the
    # project that holds the same object under that name (a re-export's home)
    homes = []
    try:
        module = importlib.import_module(package)
        table = getattr(module, "_LAZY", None) or getattr(module, "_HOMES", None) or {}
        home = table.get(attr)
        home = home[0] if isinstance(home, tuple) else home
        if home:
            homes.append(importlib.util.resolve_name(home if home.startswith(".") else "." + home, package))
    except ImportError:
        pass
    root = package.split(".")[0]
    homes += sorted(
        n
        for n, m in list(sys.modules.items())
        if (n == root or n.startswith(root + ".") or n.split(".")[0] in _PROJECT) and getattr(m, attr, _MISSING) is obj
    )
    for home in homes:
        try:
            docs = ModuleAnalyzer.for_module(home).find_attr_docs()
        except Exception:
            continue
        comment = docs.get(("", attr))
        if comment:
            lines.extend(line for line in comment if line is not None)
            return


_BACKLINK = re.compile(r'href="([^"#]*\.html)#([^"]+)"')


def fix_viewcode_backlinks(app, pagename, templatename, context, doctree):
    """The "[docs]" links of a highlighted source page (sphinx.ext.viewcode) to the entry that documents
    each object. viewcode writes them as ``<module>.<name>`` of one module name per source file, which is
    wrong where one file's objects are documented under different public names (``export.Rollout`` and
    ``export.runtime.read_metadata``, both in ``export/runtime/session.py``): each is resolved again by
    identity."""
    if not pagename.startswith("_modules/") or "body" not in context:
        return
    source = pagename[len("_modules/") :].replace("/", ".")
    py = app.env.get_domain("py")
    documented = _documented(app.env)

    def relink(match):
        uri, anchor = match.groups()
        if anchor in py.objects:
            entry = py.objects[anchor]
            if app.builder.get_relative_uri(pagename, entry.docname) == uri:
                return match.group(0)
        parts = anchor.split(".")
        for i in range(len(parts)):
            obj = _import(".".join([source, *parts[i:]]))
            if obj is _MISSING:
                continue
            for _name, entry, _ in documented.get(id(obj), ()):
                if not entry.aliased:
                    return f'href="{app.builder.get_relative_uri(pagename, entry.docname)}#{entry.node_id}"'
        return match.group(0)

    context["body"] = _BACKLINK.sub(relink, context["body"])


def setup(app):
    app.connect("missing-reference", resolve)
    app.connect("autodoc-process-docstring", lazy_data_doc)
    app.connect("html-page-context", fix_viewcode_backlinks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
