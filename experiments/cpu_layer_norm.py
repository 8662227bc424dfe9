"""Time ONNX Runtime's CPU kernels for a BERT residual + LayerNorm, fused and not (quantize.slow_cpu_fusions).

Without --model: three one-node-pair graphs on the same input, each loaded with ORT's default (all)
optimisations: ``SkipLayerNormalization`` (the fused op), ``Add`` + ``LayerNormalization`` (which ORT fuses into
the former when it loads the graph) and ``Sum`` + ``LayerNormalization`` (what edgepress writes).

With --model (an exported fp32 ONNX student): the search's INT8 path (BERT fusions, dynamic INT8 per-channel,
4-bit word-embedding table) run twice, with and without the slow CPU fusions, and both files timed in alternating
rounds beside any --baseline files, at batch 1 and 32 on random token ids.
Re-run it when onnxruntime is upgraded: if the fused kernels are no longer slower, the default can flip.

    python experiments/cpu_layer_norm.py [--batch 32] [--seq 40] [--hidden 384] [--threads 2]
    python experiments/cpu_layer_norm.py --model runs/X/search/d2-p00/02-export/model.onnx [--baseline B.onnx]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
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


def int8_student(src: Path, dst: Path, slow_cpu_fusions: bool) -> None:
    """The search's INT8 file for ``src``: fused, pre-processed, dynamic INT8 per-channel, 4-bit embedding table."""
    from compress.quantize.graph import optimize_bert, prepare_for_quantization, word_embedding_gathers
    from compress.quantize.methods import Settings, quantize_dynamic, quantize_embedding_table

    fused, prepared = dst.with_suffix(".fused.onnx"), dst.with_suffix(".prepared.onnx")
    optimize_bert(src, fused, embed_layer_norm=False, slow_cpu_fusions=slow_cpu_fusions)
    prepare_for_quantization(fused, prepared)
    table = word_embedding_gathers(onnx.load(str(prepared)))
    quantize_dynamic(prepared, dst, Settings(method="dynamic", per_channel=True), table)
    quantize_embedding_table(dst, table, block_size=64, symmetric=True)


def time_models(files: dict[str, Path], shapes: list[tuple[int, int]], threads: int, rounds: int) -> None:
    """p50 ms of each file at each (batch, seq) shape on random token ids, in alternating rounds."""
    rng = np.random.default_rng(0)
    sessions = {}
    for name, path in files.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sessions[name] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    times: dict[tuple[str, tuple[int, int]], list[float]] = {}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for batch, seq in shapes:
                feed = {i.name: (rng.integers(1000, 2000, (batch, seq)) if i.name == "input_ids" else
                                 np.ones((batch, seq)) if i.name == "attention_mask" else np.zeros((batch, seq)))
                        .astype(np.int64) for i in sess.get_inputs()}
                sess.run(None, feed)
                for _ in range(max(10, 4000 // (batch * seq))):
                    t = time.perf_counter()
                    sess.run(None, feed)
                    times.setdefault((name, (batch, seq)), []).append(time.perf_counter() - t)
    print(f"onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, {threads} threads, "
          f"p50 ms over {rounds} alternating rounds")
    print("| model | " + " | ".join(f"{b} x {s}" for b, s in shapes) + " |")
    print("| --- |" + " ---: |" * len(shapes))
    for name in files:
        print(f"| {name} | " + " | ".join(f"{statistics.median(times[(name, sh)]) * 1e3:.3f}" for sh in shapes) + " |")


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
    args = ap.parse_args()

    if args.model is not None:
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for slow in (True, False):
                files[f"slow_cpu_fusions={str(slow).lower()}"] = dst = Path(tmp) / f"slow{int(slow)}.onnx"
                int8_student(args.model, dst, slow)
            files.update({b.name if b.parent.name == "" else f"{b.parent.name}/{b.name}": b for b in args.baseline})
            time_models(files, [(1, 12), (1, 24), (1, 48), (32, 40)], args.threads, args.rounds)
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
