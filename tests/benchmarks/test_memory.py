"""Session memory in a fresh process: it sees a file's own weights, not what earlier models left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.memory import session_memory
from benchmarks.report import to_markdown, validate_report
from benchmarks.runners.base import Threads

FAST = dict(batch_sizes=[1], seq_lens=[8], warmup=1, min_runs=3, min_seconds=0.0, threads=Threads(1, 1))


def lookup_model(path: Path, rows: int, width: int = 128) -> Path:
    """An ONNX file that gathers input_ids from a rows x width float table: its weights are rows*width*4 bytes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.random.default_rng(0).standard_normal((rows, width)).astype(np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"])], "lookup",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", width])],
        initializer=[table])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_fresh_process_sees_the_weights_of_the_file_and_only_those(tmp_path):
    big = lookup_model(tmp_path / "big.onnx", rows=120_000)      # 61 MB of weights
    small = lookup_model(tmp_path / "small.onnx", rows=1_000)    # 0.5 MB
    settings = BenchSettings(**FAST)
    before = session_memory(small, settings, vocab=1_000, lengths=None)
    heavy = session_memory(big, settings, vocab=1_000, lengths=None)
    after = session_memory(small, settings, vocab=1_000, lengths=None)
    assert heavy["process"] == "fresh" and heavy["batches"] == [1] and [b["batch"] for b in heavy["by_batch"]] == [1]
    assert heavy["session_mb"] >= 55, heavy
    assert before["session_mb"] < heavy["session_mb"] - 40
    assert after["session_mb"] == pytest.approx(before["session_mb"], abs=10)  # nothing carried over from big


def test_each_batch_size_is_measured_in_its_own_process_and_the_first_is_the_headline(tmp_path):
    wide = lookup_model(tmp_path / "wide.onnx", rows=1_000, width=2048)  # 8 MB table; batch 64 x 128 output: 67 MB
    settings = BenchSettings(**{**FAST, "batch_sizes": [1, 64], "seq_lens": [128]})
    out = session_memory(wide, settings, vocab=1_000, lengths=None)
    by = {b["batch"]: b["session_mb"] for b in out["by_batch"]}
    assert sorted(by) == [1, 64] and out["session_mb"] == by[1]
    assert by[64] >= by[1] + 40, by  # batch 1 is not charged the batch-64 activations


def test_a_file_runtime_refuses_gives_a_reason_not_a_number(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf")
    out = session_memory(bad, BenchSettings(**FAST), vocab=100, lengths=[3, 5])
    assert out["session_mb"] is None and "memory probe failed" in out["reason"] and "onnxruntime" in out["reason"]


def test_bench_reports_session_memory_for_onnx_rows_and_the_ratio_to_the_fp32_baseline(tmp_path):
    big = lookup_model(tmp_path / "big.onnx", rows=60_000)       # 31 MB
    small = lookup_model(tmp_path / "small.onnx", rows=1_000)
    models = [ModelSpec("teacher", small, role="teacher"), ModelSpec("fp32-base", big, role="baseline"),
              ModelSpec("small", small)]
    rep = benchmark(models, "embedding", BenchSettings(**{**FAST, "batch_sizes": [1, 2]}, session_memory=True),
                    eval_set=EvalSet(["a b", "c d e"], source="hand"))
    validate_report(rep)
    by = {e["name"]: e for e in rep["models"]}
    base_mb, small_mb = (by[n]["session_memory"]["session_mb"] for n in ("fp32-base", "small"))
    assert base_mb > small_mb + 20
    assert rep["settings"]["session_memory"] is True
    md = to_markdown(rep)
    assert "fp32-base session MB / session MB (batch 1)" in md
    ratio_row = next(line for line in md.splitlines() if line.startswith("| local | small"))
    assert f"{base_mb / small_mb:.2f}×" in ratio_row
    sweep_b2 = next(line for line in md.splitlines() if line.startswith("| local | fp32-base | 2 |"))
    assert sweep_b2.endswith(f"| {by['fp32-base']['session_memory']['by_batch'][1]['session_mb']:.0f} |")
    off = benchmark([ModelSpec("small", small)], "embedding", BenchSettings(**FAST),
                    eval_set=EvalSet(["a b"], source="hand"))
    assert "session_memory" not in off["models"][0]


def dense_pte(path: Path, width: int, max_batch: int = 4, max_seq: int = 16) -> Path:
    """An ExecuTorch .pte (XNNPACK) that embeds input_ids in 1000 x 64 and runs two width-wide linear layers: its
    weights, all read on every call, are about 2 * 64 * width * 4 bytes. ExecuTorch plans its activation arena for
    the largest shape the export allows (``max_batch`` x ``max_seq`` x width floats), so the bounds are kept small
    here: the weights, not the arena, are what differs between a wide and a narrow file."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    class Dense(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(1000, 64)
            self.up, self.down = torch.nn.Linear(64, width), torch.nn.Linear(width, 64)

        def forward(self, input_ids, attention_mask):
            hidden = self.down(torch.relu(self.up(self.emb(input_ids)))) * attention_mask.unsqueeze(-1).float()
            return hidden, hidden.mean(dim=1)

    torch.manual_seed(0)
    ids = torch.randint(5, 1000, (2, 8))
    dims = {0: torch.export.Dim("batch", min=1, max=max_batch), 1: torch.export.Dim("sequence", min=2, max=max_seq)}
    with torch.no_grad():
        program = torch.export.export(Dense().eval(), (ids, torch.ones_like(ids)), dynamic_shapes=(dims, dims))
        path.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    return path


def test_every_runtime_gets_the_probe_a_pte_in_the_executorch_runtime(tmp_path):
    pytest.importorskip("executorch.runtime", reason="pip install 'edgepress[executorch]'")
    big = dense_pte(tmp_path / "big.pte", width=65_536)   # 2 x 64 x 65536 fp32 weights: 34 MB
    small = dense_pte(tmp_path / "small.pte", width=256)  # 0.1 MB
    settings = BenchSettings(**{**FAST, "batch_sizes": [1, 4]})
    heavy = session_memory(big, settings, vocab=1_000, lengths=[3, 7, 12])
    light = session_memory(small, settings, vocab=1_000, lengths=[3, 7, 12])
    assert [b["batch"] for b in heavy["by_batch"]] == [1, 4] and heavy["process"] == "fresh"
    assert heavy["session_mb"] >= 30, heavy  # the file's weights, read in the ExecuTorch runtime
    assert light["session_mb"] < heavy["session_mb"] - 25, (light, heavy)
    # the arena planned for the export's upper bounds is resident too: the same narrow model exported for
    # batch <= 64 x sequence <= 128 holds 64 * 128 * 4096 floats (128 MiB) more than at batch <= 4 x sequence <= 16
    wide_bounds = session_memory(dense_pte(tmp_path / "bounds.pte", width=4096, max_batch=64, max_seq=128),
                                 BenchSettings(**FAST), vocab=1_000, lengths=[3, 7, 12])
    narrow_bounds = session_memory(dense_pte(tmp_path / "narrow.pte", width=4096), BenchSettings(**FAST), vocab=1_000,
                                   lengths=[3, 7, 12])
    assert wide_bounds["session_mb"] > narrow_bounds["session_mb"] + 100, (wide_bounds, narrow_bounds)
    bad = tmp_path / "broken.pte"
    bad.write_bytes(b"not a program")
    out = session_memory(bad, BenchSettings(**FAST), vocab=100, lengths=None)
    assert out["session_mb"] is None and "memory probe failed (exit 2)" in out["reason"]
    assert "ExecuTorch cannot load" in out["reason"]
