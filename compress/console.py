"""How loud the command line is: normal, verbose (log lines on the console) or quiet (errors and tables only).

The CLI sets it once per invocation; library code asks ``is_quiet()`` / ``is_verbose()`` instead of
reading flags, so a notebook user gets the normal level without calling anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

LEVELS = ("quiet", "normal", "verbose")


@dataclass
class _Verbosity:
    level: str = "normal"


_STATE = _Verbosity()


def set_verbosity(level: str) -> None:
    """Set the console level for this process (called by the CLI's global options)."""
    if level not in LEVELS:
        raise ValueError(f"verbosity '{level}' is not one of {LEVELS}")
    _STATE.level = level
    logging.getLogger("edgepress").setLevel(logging.INFO if level == "verbose" else logging.WARNING)


def verbosity() -> str:
    return _STATE.level


def is_quiet() -> bool:
    return _STATE.level == "quiet"


def is_verbose() -> bool:
    return _STATE.level == "verbose"
