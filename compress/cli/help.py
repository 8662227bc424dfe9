"""How edgepress's ``--help`` reads: typer 0.29's rich help, with what it gets wrong for our prose put right.

typer 0.29 writes a required argument as ``{config}`` in the usage line while the prose says CONFIG, labels
every flag ``<bool>``, spends a wide column on types such as ``<int range>``, and keeps the hard line breaks
of a docstring, so wrapped prose ends in one-word lines. ``use_edgepress_help(app)`` gives every command and group of ``app`` (and its sub-apps) the classes
below; they change only how help is shown, never what is parsed.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import DefaultPlaceholder


def unwrap(text: str | None) -> str | None:
    """Docstring prose with single line breaks joined, so it wraps at the terminal's width.

    Paragraphs (blank lines) stay; a paragraph starting with ``\\b`` keeps its lines, as in click.
    """
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
                       for p in paragraphs)


_VALUE_NAMES = {"str": "TEXT", "int": "INT", "float": "FLOAT", "path": "PATH", "file": "FILE", "directory": "DIR"}


def _value_name(typer_type: str) -> str:
    """The value an option takes, as a short name: ``<int range>`` -> INT, ``<list[str]>`` -> TEXT (the option
    repeats), ``<path>`` -> PATH; choices (``<a|b>``) are kept as ``a|b``."""
    bare = typer_type.strip("<>")
    bare = re.sub(r"^list\[(.*)\]$", r"\1", bare).replace(" range", "")
    return _VALUE_NAMES.get(bare, bare.upper() if "|" not in bare else bare)


class _HelpStyle:
    """Mixin for typer's command and group classes (see the module docstring)."""

    help: str | None
    short_help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrap(self.help)
        self.short_help = unwrap(self.short_help)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if isinstance(p, TyperOption) and p.is_flag and p.metavar is None:
                p.metavar = ""  # a flag takes no value: no <bool> type
            elif isinstance(p, TyperOption) and p.metavar is None:
                p.metavar = _value_name(p.display_type(ctx))  # <int range> -> INT: narrow enough for 80 columns
            elif isinstance(p, TyperArgument) and p.metavar is None:
                p.metavar = p.name.upper()  # CONFIG, as the prose spells it
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        return [re.sub(r"^\{(.+)\}", r"\1", piece) for piece in pieces]  # {CONFIG} -> CONFIG


class EdgepressCommand(_HelpStyle, TyperCommand):
    """A typer command with edgepress's help style."""


class EdgepressGroup(_HelpStyle, TyperGroup):
    """A typer group with edgepress's help style."""


def use_edgepress_help(app: typer.Typer) -> None:
    """Give ``app``, its commands and its sub-apps (recursively) edgepress's help style; call once all are added."""
    if isinstance(app.info.cls, DefaultPlaceholder) and app.info.cls.value is None:
        app.info.cls = EdgepressGroup  # a class given to typer.Typer(cls=...) is kept
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):  # typer's default; a class given to @app.command(cls=...) is kept
            command.cls = EdgepressCommand
    for group in app.registered_groups:  # a sub-app's group class comes from its own info (set above)
        if isinstance(group.typer_instance, typer.Typer):
            use_edgepress_help(group.typer_instance)
