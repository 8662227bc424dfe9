"""Latency statistics, the timing loop and memory probes.

The implementation lives in ``remote_runner.py`` (stdlib only at import time) so the file that is
copied to a phone or board measures with exactly the loop the host uses. ``measure`` is the one timing
loop and ``summarize`` the one definition of p50/p90/p99; ``measure_interleaved`` times several models
turn by turn with that same loop.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from benchmarks.remote_runner import (  # noqa: F401  (re-exported API)
    Clock,
    measure,
    peak_rss_mb,
    percentile,
    reset_peak_rss,
    rss_mb,
    summarize,
)

__all__ = ["Clock", "measure", "measure_interleaved", "summarize", "percentile", "reset_peak_rss", "rss_mb",
           "peak_rss_mb"]


def measure_interleaved(steps: Sequence[Callable[[], Any]], runs: int, warmup: int = 3,
                        clock: Clock = time.perf_counter) -> list[list[float]]:
    """Per-run durations (s) of each step, timed by ``measure`` in rounds that run every step once.

    The order rotates each round (A B, B A, ... for two), so drifting machine load hits all steps alike.
    """
    n = len(steps)

    def which(i: int) -> int:
        rnd, pos = divmod(i, n)
        return (pos + rnd) % n

    start = warmup * n  # measure's timed calls continue its warm-up numbering
    times = measure(lambda i: steps[which(i)](), warmup * n, runs * n, 0.0, clock=clock)
    out: list[list[float]] = [[] for _ in steps]
    for j, t in enumerate(times):
        out[which(start + j)].append(t)
    return out
