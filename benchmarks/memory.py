"""Peak memory of one model session (any runtime the bench times), measured in a fresh Python process per model.

Measured inside the bench process, a model's RSS growth depends on what the allocators kept from the models
measured before it (the same file read 0 MB after the teacher and 80 MB first). A child process that imports the
file's runtime, opens the one file with the runner class that times it (ONNX Runtime, OpenVINO, LiteRT, ExecuTorch)
and runs the bench's lengths at one batch size gives the session's own cost at that size: its peak RSS (VmHWM) minus
its RSS after the imports. The child is ``benchmarks/memory_probe.py``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

RUNS_PER_BATCH = 64  # the runner draws 64 realistic batches per batch size: run each once
TIMEOUT_S = 900.0


def memory_settings(settings: Any) -> Any:
    """The bench settings for a memory probe: every drawn batch once, no warm-up, no time floor."""
    return replace(settings, warmup=0, min_runs=RUNS_PER_BATCH, min_seconds=0.0)


def session_memory(model: Path, settings: Any, vocab: int, lengths: list[int] | None, fmt: str | None = None,
                   task: str = "embedding") -> dict[str, Any]:
    """Peak RSS a fresh process adds by opening ``model`` (``fmt``: its bench format, detected from the path when
    None) with its runner and running batches of one size on it (MiB), per size.

    Each of the bench's batch sizes gets its own process, so the batch-1 number is the session an app serving
    one request at a time holds, not one inflated by the batch-32 activations. ``session_mb`` is the first
    (headline) batch size's, ``by_batch`` lists every size's; on failure ``session_mb`` is None and ``reason``
    says why (the latency numbers of the entry stand either way).
    """
    from benchmarks.runners import detect_format

    fmt = fmt or detect_format(Path(model))
    out: dict[str, Any] = {"session_mb": None, "batches": list(settings.batch_sizes), "process": "fresh",
                           "by_batch": []}
    for batch in settings.batch_sizes:
        probe = probe_batch(model, replace(settings, batch_sizes=[batch]), vocab, lengths, fmt, task)
        if probe.get("session_mb") is None:
            return {**out, "reason": f"batch {batch}: {probe['reason']}"}
        out["by_batch"].append({"batch": batch, **probe})
    first = out["by_batch"][0]
    return {**out, "session_mb": first["session_mb"], "peak_rss_mb": first["peak_rss_mb"],
            "before_load_mb": first["before_load_mb"]}


def probe_batch(model: Path, settings: Any, vocab: int, lengths: list[int] | None, fmt: str,
                task: str = "embedding") -> dict[str, Any]:
    """One fresh ``memory_probe`` process on ``model`` (format ``fmt``) at ``settings``' batch sizes: its VmHWM minus
    its RSS after the imports (``session_mb``), or ``session_mb`` None and a ``reason``."""
    from benchmarks.remote import runner_args, runner_result

    cmd = [sys.executable, "-m", "benchmarks.memory_probe", "--model", str(model), "--format", fmt, "--task", task,
           *runner_args(memory_settings(settings), vocab, lengths)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"session_mb": None, "reason": f"the memory probe ran past {TIMEOUT_S:.0f} s"}
    result = runner_result(res.stdout)
    if res.returncode != 0 or result is None or "error" in result:
        detail = (result or {}).get("error") or (res.stderr.strip() or res.stdout.strip())[-300:]
        return {"session_mb": None, "reason": f"memory probe failed (exit {res.returncode}): {detail}"}
    peak, before = result.get("peak_rss_mb"), result.get("rss_before_load_mb")
    if peak is None or before is None:
        return {"session_mb": None, "reason": "this platform reports no resident-set size (/proc/self/status)"}
    return {"session_mb": peak - before, "peak_rss_mb": peak, "before_load_mb": before}
