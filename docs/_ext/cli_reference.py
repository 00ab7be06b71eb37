"""Sphinx directive ``cli-reference``: a command's reference rendered from its argparse parser at build time.

    ```{cli-reference} ch_numba.cli:build_parser
    :prog: python -m ch_numba
    ```

The parser is built by calling the named function; its ``--help`` text and that of every subcommand
become sections of literal blocks, so the reference never drifts from the code (nothing is copied by hand).
"""

import argparse
import importlib

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


def _load(spec: str) -> argparse.ArgumentParser:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "build_parser")()


def _subparsers(parser: argparse.ArgumentParser):
    """(name, parser) of the parser's subcommands, in the order they were added (aliases skipped)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield name, sub


def _help(parser: argparse.ArgumentParser, prog: str) -> str:
    parser.prog = prog
    formatter = parser.formatter_class
    parser.formatter_class = lambda prog: formatter(prog, width=100)
    try:
        return parser.format_help()
    finally:
        parser.formatter_class = formatter


class CLIReference(SphinxDirective):
    required_arguments = 1
    option_spec = {"prog": directives.unchanged_required}

    def _section(self, title: str, text: str) -> nodes.section:
        section = nodes.section(ids=[nodes.make_id(title)], names=[nodes.fully_normalize_name(title)])
        section += nodes.title(text=title)
        section += nodes.literal_block(text, text, language="none")
        self.state.document.note_implicit_target(section, section)
        return section

    def run(self):
        parser = _load(self.arguments[0])
        prog = self.options.get("prog", parser.prog)
        out = [self._section(prog, _help(parser, prog))]
        for name, sub in _subparsers(parser):
            out.append(self._section(f"{prog} {name}", _help(sub, f"{prog} {name}")))
        return out


def setup(app):
    app.add_directive("cli-reference", CLIReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
