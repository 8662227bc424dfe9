"""The session-memory probe's child process: open one model file with its bench runner and run the bench's feeds.

    python -m benchmarks.memory_probe --model model.pte --format executorch --task embedding --batch 1 \
        [--seq 128 | --lengths 12,30,7] --vocab 30522 --threads 1 --inter-threads 1 --min-runs 64

It imports the format's runtime first, notes its resident memory (the baseline), resets the peak mark, then loads
the file with ``benchmarks.runners.runner_class(format)`` (the class that times it: ONNX Runtime, OpenVINO, LiteRT,
ExecuTorch, torch) and runs the same feeds the device runner draws (``remote_runner.synthetic_feeds``: realistic
batches from the lengths, or the fixed shapes). It prints one JSON object: ``peak_rss_mb`` (VmHWM) and
``rss_before_load_mb``, or ``{"error": ...}``. Exit codes: 0 ok, 1 the run failed, 2 the file cannot be loaded,
3 bad arguments, 4 the runtime is missing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

# modules a format's runner imports while loading: imported before the baseline, so a runtime's own import is not
# counted as its session (the runner classes import most of them lazily, in load())
RUNTIME_MODULES = {"onnx": ("onnxruntime",), "ort": ("onnxruntime",), "openvino": ("openvino",),
                   "litert": ("ai_edge_litert.interpreter",), "executorch": ("executorch.runtime",),
                   "torchscript": ("torch",), "ptl": ("torch",), "pytorch": ("torch", "transformers")}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The child's arguments: the model, its format and task, and ``remote.runner_args``' bench settings."""
    from benchmarks.remote_runner import _int_list

    p = argparse.ArgumentParser(description="Peak memory of one model session in this fresh process; prints JSON.")
    p.add_argument("--model", required=True)
    p.add_argument("--format", required=True, help="the bench format (benchmarks.runners.FORMATS)")
    p.add_argument("--task", default="embedding")
    p.add_argument("--batch", type=_int_list, default=[1])
    p.add_argument("--seq", type=_int_list, default=[128])
    p.add_argument("--lengths", default="", help="realistic mode: observed token lengths, comma-separated")
    p.add_argument("--vocab", type=int, default=100)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--min-runs", type=int, default=64)
    p.add_argument("--min-seconds", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the runtime's default)")
    p.add_argument("--inter-threads", type=int, default=0, help="inter-op threads (0: the runtime's default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """Import the runtime, take the baseline, load the file with its runner, run every feed; the memory record."""
    from benchmarks.remote_runner import measure, peak_rss_mb, realistic_batches, reset_peak_rss, rss_mb, synthetic_feeds
    from benchmarks.runners import runner_class
    from benchmarks.runners.base import Threads

    cls = runner_class(args.format, "cpu")
    reason = cls.unavailable_reason()
    if reason:
        raise RuntimeMissing(reason)
    for module in RUNTIME_MODULES.get(args.format, ()):
        importlib.import_module(module)
    runner = cls(Path(args.model), args.task, Threads(args.threads or None, args.inter_threads or None))
    rss0 = rss_mb()
    reset_peak_rss()
    runner.load()
    names = runner.input_names
    if args.lengths:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
        feeds = [synthetic_feeds(names, b, max(ls), args.vocab, seed=k, lengths=ls)
                 for b in args.batch for k, ls in enumerate(realistic_batches(lengths, b, 64, seed=args.seed))]
    else:
        feeds = [synthetic_feeds(names, b, s, args.vocab) for b in args.batch for s in args.seq]
    prepared = [runner.prepare(f) for f in feeds]
    runs = measure(lambda i: runner.run(prepared[i % len(prepared)]), args.warmup, max(args.min_runs, len(prepared)),
                   args.min_seconds)
    return {"model": args.model, "format": args.format, "runtime": runner.describe(), "runs": len(runs),
            "peak_rss_mb": peak_rss_mb(), "rss_before_load_mb": rss0}


class RuntimeMissing(Exception):
    """The format's runtime is not installed here."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one JSON object on stdout (``{"error": ..., "kind": ...}`` on failure)."""
    from compress.core.errors import EdgepressError, ModelLoadError

    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return 3 if exc.code else 0
    try:
        out = probe(args)
    except RuntimeMissing as exc:
        print(json.dumps({"error": str(exc), "kind": "dependency"}))
        return 4
    except ModelLoadError as exc:
        print(json.dumps({"error": str(exc), "kind": "load"}))
        return 2
    except EdgepressError as exc:  # no runner for the format, feeds the file refuses
        print(json.dumps({"error": str(exc), "kind": "run"}))
        return 1
    except Exception as exc:  # noqa: BLE001 - a runtime's own failure (out of memory, bad shapes): reported as JSON
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(json.dumps({"error": f"running {args.model} failed: {type(exc).__name__}: {msg}", "kind": "run"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
