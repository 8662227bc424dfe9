"""User-facing errors: the CLI prints them as one short message (no traceback unless --debug)."""

from __future__ import annotations

from collections.abc import Iterable


class EdgepressError(Exception):
    """A problem the user can act on: says what is wrong, where, and what to do."""


class ConfigError(EdgepressError):
    """The config file or a --set override is invalid."""


class UsageError(ConfigError):
    """A command-line option's value is out of range (exit 2, like typer's own usage errors)."""


class ModelLoadError(EdgepressError):
    """A model path, hub name or head does not fit what was asked."""


class DataError(EdgepressError):
    """A data file is missing, empty, or lacks a named column."""


class ParityError(EdgepressError):
    """An exported or quantized model disagrees with its PyTorch reference past tolerance."""


class RunLocked(EdgepressError):
    """Another process holds the run (or output) folder's lock; the message names its PID and host."""


class DiskFull(EdgepressError):
    """The disk (or quota) filled up while writing: the message names the file, the space needed and free."""


class Unwritable(EdgepressError):
    """A folder or file cannot be written (read-only, no permission, or a symbolic link edgepress did not make)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every stage cleans up as for Ctrl-C.

    A subclass, not KeyboardInterrupt itself: CPython marks an exact KeyboardInterrupt that escapes Python code run
    from C (pybind11's exec) as unhandled and ends the process with SIGINT even after a clean ``sys.exit(143)``.
    """


class RunInterrupted(Exception):
    """Ctrl-C inside a stage: the message names the stage and says that the next run resumes.

    Not a KeyboardInterrupt, so that typer does not swallow it into a bare exit code.
    """


class MissingDependencyError(EdgepressError):
    """An optional backend is not installed; the message names the pip install that fixes it."""


def require(module: str, pip_name: str | None = None, extra: str | None = None):
    """Import an optional heavy backend lazily, failing with the exact install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        hint = f"pip install '{pip_name or module}'"
        if extra:
            hint += f"  (or: pip install 'edgepress[{extra}]')"
        raise MissingDependencyError(f"{module} is needed for this step but is not installed: {hint}") from exc


def closest_name(name: object, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name closest to ``name`` (a typo's likely meaning), for the "did you mean" of a one-line error."""
    import difflib

    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return close[0] if close else None
