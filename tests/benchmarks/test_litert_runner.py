"""The LiteRT runner: the harness times a .tflite like an .onnx file, and its outputs match ONNX Runtime's on the
same feeds (batches and lengths the file's static buckets must pad, run row by row and cut back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.report import validate_report
from benchmarks.runners import locate, runner_class
from benchmarks.runners.base import Threads
from tests.benchmarks.helpers import tokenized

pytest.importorskip("ai_edge_litert", reason="pip install 'edgepress[litert]'")
pytestmark = pytest.mark.litert_converter

HEADS = ("embedding", "token-classification")
FAST = dict(batch_sizes=[1, 4], seq_lens=[12], warmup=1, min_runs=3, min_seconds=0.0, rounds=1, threads=Threads(1, 1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """head -> the export folder of a tiny BERT with that head, written as model.onnx and litert/*.tflite."""
    from export.api import export_model
    from tests.tiny import make_tiny_model

    out = {}
    for head in HEADS:
        model = make_tiny_model(tmp_path_factory.mktemp(f"tiny-{head}"), "bert", head)
        out[head] = export_model(model, tmp_path_factory.mktemp(f"export-{head}"), head, ["onnx", "litert"],
                                 max_length=64)
    return out


@pytest.mark.parametrize("head", HEADS)
def test_the_harness_times_a_tflite_beside_its_onnx_file(exported, head):
    files = exported[head]["files"]
    assert locate(files["litert"]) == ("litert", locate(files["litert"])[1])
    texts = ["a b c", "the quick brown fox jumps over the lazy dog", "short", "one more line of words here"]
    rep = benchmark([ModelSpec("onnx", files["onnx"], role="teacher"), ModelSpec("tflite", files["litert"])], head,
                    BenchSettings(**FAST), eval_set=EvalSet(texts, source="hand"), tokenizer_path=files["tokenizer"])
    validate_report(rep)
    onnx_e, lite_e = rep["models"]
    assert lite_e["status"] == "ok", lite_e["reason"]
    assert lite_e["format"] == "litert" and lite_e["runtime"]["backend"] == "litert"
    assert lite_e["runtime"]["threads"]["intra_op"] == 1 and "XNNPACK" in lite_e["runtime"]["delegate"]
    assert "[32, 64]" in lite_e["runtime"]["shapes"]
    assert [p["batch"] for p in lite_e["points"]] == [1, 4] and all(p["latency_ms"]["p50"] > 0 for p in lite_e["points"])
    assert lite_e["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert lite_e["quality"]["value"] == pytest.approx(1.0, abs=1e-4), lite_e["quality"]


@pytest.mark.parametrize("head", HEADS)
def test_tflite_outputs_match_onnx_runtime_at_several_batch_sizes_and_lengths(exported, head):
    from tests.benchmarks.helpers import assert_matches_onnx_runtime

    files = exported[head]["files"]
    lite = runner_class("litert")(files["litert"], head, Threads(1))
    ort = runner_class("onnx")(files["onnx"], head, Threads(1))
    lite.load()
    ort.load()
    assert sorted(lite.output_names) == sorted(ort.output_names)  # named like the ONNX file's head outputs
    # lengths in both buckets, batches the file lacks
    assert_matches_onnx_runtime(lite, ort, files["tokenizer"], [(1, 1), (3, 7), (2, 40), (5, 12)])


def test_feed_longer_than_the_largest_bucket_is_cut_and_said(exported):
    from benchmarks.feeds import tokenize_feeds
    from compress.model.loading import load_tokenizer

    files = exported["embedding"]["files"]
    lite = runner_class("litert")(files["litert"], "embedding", Threads(1))
    lite.load()
    assert "cut" not in lite.describe()["shapes"]
    text = " ".join("the quick brown fox jumps over the lazy dog".split() * 12)
    feeds = tokenize_feeds(load_tokenizer(str(files["tokenizer"])), [text], None, 100)
    assert feeds["input_ids"].shape[1] == 100
    out = lite.outputs(lite.prepare(feeds))
    assert out["last_hidden_state"].shape[:2] == (1, 100) and not out["last_hidden_state"][:, 64:].any()
    assert "feeds longer than 64 tokens were cut to it" in lite.describe()["shapes"]


def test_int8_file_runs_and_stays_close(exported):
    files = exported["embedding"]["files"]
    int8 = str(files["litert"]).replace("model.tflite", "model_int8.tflite")
    lite = runner_class("litert")(int8, "embedding", Threads(1))
    ort = runner_class("onnx")(files["onnx"], "embedding", Threads(1))
    lite.load()
    ort.load()
    feeds = tokenized(files["tokenizer"], ["the quick brown fox", "jumps over the lazy dog twice today"])
    a, b = lite.predict(feeds), ort.predict(feeds)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.98 and float(np.abs(a - b).max()) > 1e-6  # quantized: close, not identical


def test_precision_is_read_from_the_file(exported, tmp_path):
    from benchmarks.cli.run import parse_model_arg
    from benchmarks.runners.litert_runner import tflite_precision

    folder = exported["embedding"]["files"]["litert"].rsplit("/", 1)[0]
    renamed = tmp_path / "a.tflite"  # the name says nothing: the file's tensors do
    for name, want in [("model.tflite", "fp32"), ("model_fp16.tflite", "fp16"), ("model_int8.tflite", "int8")]:
        renamed.write_bytes((Path(folder) / name).read_bytes())
        assert tflite_precision(renamed) == want
        assert parse_model_arg(str(renamed)).precision == want
    renamed.write_bytes(b"not a flatbuffer")
    assert tflite_precision(renamed) is None
