"""Latency statistics, the timing loop and memory probes.

The implementation lives in ``remote_runner.py`` (stdlib only at import time) so the file that is
copied to a phone or board measures with exactly the loop the host uses.
"""

from __future__ import annotations

from benchmarks.remote_runner import (  # noqa: F401  (re-exported API)
    Clock,
    measure,
    peak_rss_mb,
    percentile,
    reset_peak_rss,
    rss_mb,
    summarize,
)

__all__ = ["Clock", "measure", "summarize", "percentile", "reset_peak_rss", "rss_mb", "peak_rss_mb"]
