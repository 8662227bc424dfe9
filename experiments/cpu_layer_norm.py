"""Time ONNX Runtime's CPU kernels for a BERT residual + LayerNorm, fused and not (quantize.slow_cpu_fusions).

Without --model: three one-node-pair graphs on the same input, each loaded with ORT's default (all)
optimisations: ``SkipLayerNormalization`` (the fused op), ``Add`` + ``LayerNormalization`` (which ORT fuses into
the former when it loads the graph) and ``Sum`` + ``LayerNormalization`` (what edgepress writes).

With --model (an exported fp32 ONNX student folder's model.onnx): edgepress's quantizer as the search runs it (BERT
fusions, dynamic INT8 per-channel, 4-bit word-embedding table) run twice, with and without the slow CPU fusions,
into --out; then `edgepress bench run` times both files beside any --baseline files (24 and 40 tokens at batch 1 and 32, random
token ids of the student's tokenizer; its report lands in --out/bench).
Re-run it when onnxruntime is upgraded: if the fused kernels are no longer slower, the default can flip.

    python experiments/cpu_layer_norm.py [--batch 32] [--seq 40] [--hidden 384] [--threads 2]
    python experiments/cpu_layer_norm.py --model runs/X/search/d2-p00/01-export/model.onnx [--baseline B.onnx] [--out DIR]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for a checkout that is not installed


def residual_norm_graph(kind: str, hidden: int) -> bytes:
    """x + y then LayerNorm over the last axis, written as ``kind``: skip (fused), add or sum."""
    inits = [numpy_helper.from_array(np.ones(hidden, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(hidden, np.float32), "beta")]
    if kind == "skip":
        nodes = [helper.make_node("SkipLayerNormalization", ["x", "y", "gamma", "beta"], ["out"],
                                  domain="com.microsoft", epsilon=1e-12)]
    else:
        nodes = [helper.make_node("Add" if kind == "add" else "Sum", ["x", "y"], ["s"]),
                 helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["out"], axis=-1, epsilon=1e-12)]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", "seq", hidden]) for n in ("x", "y", "out")]
    graph = helper.make_graph(nodes, kind, io[:2], io[2:], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


def int8_student(src: Path, out: Path, slow_cpu_fusions: bool, task: str) -> Path:
    """The search's INT8 file for ``src``, made by edgepress's quantizer (BERT fusions, dynamic INT8 per-channel,
    4-bit word-embedding table, no guard fallbacks), with or without the slow CPU fusions."""
    from compress.quantize.api import quantize_onnx
    from compress.quantize.config import QuantizeConfig

    cfg = QuantizeConfig.model_validate({
        "methods": ["dynamic"], "optimize_graph": True, "per_channel": True, "slow_cpu_fusions": slow_cpu_fusions,
        "embedding": {"bits": 4, "block_size": 64}, "guard": {"fallbacks": False}})
    report = quantize_onnx(src, out, tokenizer=src.parent, task=task, config=cfg, name_prefix="student")
    return out / report["methods"]["dynamic"]["path"]


def bench_files(files: dict[str, Path], tokenizer: Path, task: str, threads: int, out: Path) -> None:
    """Time ``files`` with the project's harness: ``edgepress bench run`` at 24 and 40 tokens, batch 1 and 32."""
    models = [f"{name}={path}" for name, path in files.items()]
    cmd = [sys.executable, "-m", "compress.cli.main", "bench", "run", *models, "--task", task, "--tokenizer", str(tokenizer),
           "--no-realistic", "--seq", "24,40", "--batch", "1,32", "--threads", str(threads),
           "--min-runs", "200", "--min-seconds", "2", "--no-session-memory", "--out", str(out / "bench")]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parents[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", type=Path, help="an fp32 ONNX student: compare its INT8 file with and without the fusions")
    ap.add_argument("--baseline", type=Path, action="append", default=[], help="another ONNX file timed beside them")
    ap.add_argument("--task", default="embedding", help="the student's task, as `edgepress bench run --task` takes it")
    ap.add_argument("--out", type=Path, default=Path("/tmp/cpu-layer-norm"), help="folder for the INT8 files and the report")
    args = ap.parse_args()

    if args.model is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        files = {f"slow-fusions-{str(slow).lower()}": int8_student(
            args.model, args.out / f"slow_cpu_fusions_{str(slow).lower()}", slow, args.task) for slow in (True, False)}
        files.update({f"baseline{n}": b for n, b in enumerate(args.baseline, 1)})
        bench_files(files, args.model.parent, args.task, args.threads, args.out)
        return

    rng = np.random.default_rng(0)
    feed = {n: rng.standard_normal((args.batch, args.seq, args.hidden)).astype(np.float32) for n in ("x", "y")}
    sessions = {}
    for kind in ("skip", "add", "sum"):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        sessions[kind] = ort.InferenceSession(residual_norm_graph(kind, args.hidden), so,
                                              providers=["CPUExecutionProvider"])
    ref = sessions["add"].run(None, feed)[0]
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(args.rounds):  # alternating rounds, so drift hits every graph alike
        for kind, sess in sessions.items():
            np.testing.assert_allclose(sess.run(None, feed)[0], ref, rtol=1e-4, atol=1e-4)
            for _ in range(args.runs):
                t = time.perf_counter()
                sess.run(None, feed)
                times[kind].append(time.perf_counter() - t)
    print(f"onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, "
          f"input {args.batch} x {args.seq} x {args.hidden}, {args.threads} threads, p50 of {args.rounds * args.runs} runs")
    labels = {"skip": "SkipLayerNormalization", "add": "Add + LayerNormalization (ORT fuses it on load)",
              "sum": "Sum + LayerNormalization (what edgepress writes)"}
    for kind, ts in times.items():
        print(f"  {labels[kind]:50s} {statistics.median(ts) * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
