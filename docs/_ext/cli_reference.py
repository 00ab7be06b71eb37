"""Sphinx directive ``cli-reference``: a command's reference rendered from its argparse parser at build time.

    ```{cli-reference} ch_numba.cli:build_parser
    :prog: python -m ch_numba

    Introduction (Markdown), before the command's --help.
    ```

The parser is built by calling the named function; its ``--help`` text and that of every subcommand
become sections of literal blocks, so the reference never drifts from the code (nothing is copied by hand).
"""

import argparse
import importlib
import re

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


def _load(spec: str) -> argparse.ArgumentParser:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "build_parser")()


def _subparsers(parser: argparse.ArgumentParser):
    """(name, one-line help, parser) of the parser's subcommands, in the order they were added (aliases
    skipped)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield name, helps.get(name), sub


def help_text(parser: argparse.ArgumentParser, prog: str, width: int = 80) -> str:
    """``prog --help`` as a terminal WIDTH columns wide prints it (no colour)."""
    saved = parser.prog, parser.formatter_class, getattr(parser, "color", None)
    formatter = parser.formatter_class
    parser.prog = prog
    parser.formatter_class = lambda prog: formatter(prog, width=width)
    if saved[2] is not None:
        parser.color = False  # Python >= 3.14 colours help on a terminal
    try:
        return parser.format_help()
    finally:
        parser.prog, parser.formatter_class = saved[:2]
        if saved[2] is not None:
            parser.color = saved[2]


def _prose(text: str) -> list[nodes.Node]:
    """Text with its command-line options (``--resume``, ``-v``) as literals (kept as typed, not typeset)."""
    out = []
    for i, part in enumerate(_OPTION.split(text)):
        if part:
            out.append(nodes.literal(part, part) if i % 2 else nodes.Text(part))
    return out


_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def anchor(prog: str) -> str:
    """The section id of a command: ``python -m ch_numba generate`` -> ``cli-ch-numba-generate``."""
    words = prog.split()
    if words[:2] == ["python", "-m"]:
        words = words[2:]
    return nodes.make_id("cli " + " ".join(words))


class CLIReference(SphinxDirective):
    """The command's section (titled by its prog) with the directive's content as its introduction, its
    ``--help``, and a section per subcommand (recursively), each with its one-line help and its ``--help``."""

    required_arguments = 1
    has_content = True
    option_spec = {"prog": directives.unchanged_required}

    def _section(self, prog: str, summary: str | None, text: str) -> nodes.section:
        ident = anchor(prog)
        section = nodes.section(ids=[ident], names=[nodes.fully_normalize_name(ident)])
        section += nodes.title("", "", nodes.literal(prog, prog))
        if summary and summary.rstrip(".") not in text:  # the parser's description often says it already
            summary = summary[:1].upper() + summary[1:] + ("" if summary.endswith(".") else ".")
            section += nodes.paragraph(summary, "", *_prose(summary))
        section += nodes.literal_block(text, text, language="none", classes=["cli-help"])
        self.state.document.note_explicit_target(section, section)
        return section

    def _sections(self, parser, prog: str, summary: str | None) -> nodes.section:
        section = self._section(prog, summary, help_text(parser, prog))
        for name, sub_summary, sub in _subparsers(parser):
            section += self._sections(sub, f"{prog} {name}", sub_summary)
        return section

    def run(self):
        parser = _load(self.arguments[0])
        prog = self.options.get("prog", parser.prog)
        section = self._sections(parser, prog, None)
        if self.content:
            intro = nodes.container()
            self.state.nested_parse(self.content, self.content_offset, intro)
            section.insert(1, intro.children)
        return [section]


def setup(app):
    app.add_directive("cli-reference", CLIReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "2"}
