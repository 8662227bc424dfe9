"""``"module:name"`` references, imported when used: how the registries (tasks, stages, formats) name functions and
classes that live in layers above them without importing those layers."""

from __future__ import annotations

from typing import Any, Callable


def resolve(ref: str | Callable[..., Any]) -> Any:
    """The object a ``"module:name"`` string names, imported at call time; a callable is its own answer."""
    import importlib

    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
