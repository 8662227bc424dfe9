"""Latency statistics, the timing loop and memory probes.

The implementation lives in ``remote_runner.py`` (stdlib only at import time) so the file that is
copied to a phone or board measures with exactly the loop the host uses. ``measure`` is the one timing
loop and ``summarize`` the one definition of p50/p90/p99; ``measure_interleaved`` times several models
turn by turn with that same loop, ``measure_rounds`` in blocks that alternate between them.
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

__all__ = ["Clock", "measure", "measure_interleaved", "measure_rounds", "summarize", "percentile", "reset_peak_rss", "rss_mb",
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


def measure_rounds(steps: Sequence[Callable[[int], Any]], rounds: int, warmup: int, min_runs: int,
                   min_seconds: float, clock: Clock = time.perf_counter,
                   failures: tuple[type[BaseException], ...] = ()) -> tuple[list[list[float]], dict[int, BaseException]]:
    """Per-run durations (s) of each step, timed by ``measure`` in ``rounds`` blocks per step.

    Every step's block r runs before any step's block r+1, and the steps' order rotates each round, so a machine
    that slows down or speeds up during the measurement shifts every step alike and ratios between steps stay
    honest; ``measure`` one step after another would charge the drift to whichever step ran at the time. Each
    block warms up again (``warmup`` runs) and times at least ``min_runs / rounds`` runs and
    ``min_seconds / rounds`` seconds. A step raising one of ``failures`` is dropped from later rounds; the
    exceptions come back by step index beside the durations.
    """
    import math

    rounds = max(1, rounds)
    runs_per, seconds_per = math.ceil(min_runs / rounds), min_seconds / rounds
    out: list[list[float]] = [[] for _ in steps]
    failed: dict[int, BaseException] = {}
    calls = [0] * len(steps)  # each step's index keeps counting across its blocks (realistic batches cycle on)
    for r in range(rounds):
        for k in range(len(steps)):
            j = (k + r) % len(steps)
            if j in failed:
                continue
            start = calls[j]
            try:
                block = measure(lambda i: steps[j](start + i), warmup, runs_per, seconds_per, clock=clock)
            except failures as exc:
                failed[j] = exc
                continue
            calls[j] += warmup + len(block)
            out[j].extend(block)
    return out, failed
