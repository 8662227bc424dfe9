"""Measuring models: quality metrics, latency, memory, size; local and remote runners; reports.

Importing this package is light (no torch / onnxruntime); backends load when a runner is used.
"""

from __future__ import annotations


def tool_version() -> str:
    """The installed edgepress version (``unknown`` when run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("edgepress")
    except metadata.PackageNotFoundError:
        return "unknown"
