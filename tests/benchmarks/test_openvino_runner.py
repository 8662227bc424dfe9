"""The OpenVINO runner: an IR timed by the harness with the latency hints, its task outputs equal to the ONNX file's
in ONNX Runtime, one static compile per length bucket; `bench run` takes .xml files and IR folders."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.runners.base import Threads
from compress.core.errors import EdgepressError
from tests.benchmarks.helpers import export_onnx

FAST = dict(batch_sizes=[1], seq_lens=[16], warmup=1, min_runs=3, min_seconds=0.0, threads=Threads(1, 1))
TEXTS = ["The function returns a list.", "A module is a file.", "Classes define new types.", "The loop ends here.",
         "Errors are raised by code, and the caller decides what to do with them.", "Names refer to objects."]


def _ir(onnx_path, folder):
    """The ONNX file as an fp32 IR (openvino_model.xml + .bin) in ``folder``."""
    import openvino as ov

    xml = folder / "openvino_model.xml"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return xml


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny classifier exported by `export` to ONNX + both OpenVINO IRs."""
    from export.api import export_model
    from tests.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("ov-bench")
    model = make_tiny_model(root / "model", "bert", "classification")
    export_model(model, root / "out", "classification", ["onnx", "openvino"])
    return model, root / "out"


def test_harness_times_the_ir_with_latency_hints_and_scores_it_like_onnx(exported):
    import openvino as ov
    import openvino.properties.hint as hints

    from benchmarks.report import validate_report

    model, out = exported
    xml, int8 = out / "openvino" / "openvino_model.xml", out / "openvino" / "openvino_model_int8.xml"
    rep = benchmark([ModelSpec("teacher", model, role="teacher"), ModelSpec("onnx", out / "model.onnx"),
                     ModelSpec("ov", xml), ModelSpec("ov-int8", int8, precision="int8")], "classification",
                    BenchSettings(**FAST), tokenizer_path=str(model), eval_set=EvalSet(TEXTS))
    by = {e["name"]: e for e in rep["models"]}
    assert [e["status"] for e in rep["models"]] == ["ok"] * 4, [e["reason"] for e in rep["models"]]
    for name, path in (("ov", xml), ("ov-int8", int8)):
        e = by[name]
        assert e["format"] == "openvino" and e["runtime"]["backend"] == "openvino"
        assert e["size_mb"] == pytest.approx((path.stat().st_size + path.with_suffix(".bin").stat().st_size) / 1e6)
        cpu_default = ov.Core().get_property("CPU", hints.inference_precision).to_string()  # bf16 on AMX/AVX512-BF16
        assert e["runtime"]["hints"] == {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                                         "INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": cpu_default}
        assert e["runtime"]["openvino"].startswith("20")
        assert 0 < e["latency_ms"]["p50"] <= e["latency_ms"]["p99"] and e["cold_start_ms"] > 0
        assert e["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert by["ov"]["quality"]["metric"] == by["onnx"]["quality"]["metric"] == "top1_agreement"
    assert by["ov"]["quality"]["value"] == by["onnx"]["quality"]["value"] == pytest.approx(1.0)
    assert by["ov-int8"]["quality"]["value"] >= 0.8  # 12 rows: at most 2 flips away from the teacher
    assert by["ov"]["size_mb"] > by["ov-int8"]["size_mb"]
    validate_report(rep)


@pytest.mark.parametrize("task", ["embedding", "classification", "token-classification"])
def test_task_outputs_match_onnx_runtime_and_compile_once_per_length_bucket(tiny_model_dir, tmp_path, task):
    from benchmarks.feeds import tokenize_feeds
    from benchmarks.runners.openvino_runner import OpenVinoCpuRunner, length_bucket
    from benchmarks.runners.ort_runner import OrtCpuRunner
    from compress.model.loading import load_tokenizer

    model = tiny_model_dir("bert", task)
    onnx = export_onnx(model, task, tmp_path / "model.onnx")
    ov_runner = OpenVinoCpuRunner(_ir(onnx, tmp_path), task, Threads(1, 1), inference_precision="f32")
    ort_runner = OrtCpuRunner(onnx, task, Threads(1, 1))
    ov_runner.load()
    ort_runner.load()
    assert ov_runner.output_names == ort_runner.output_names
    tok = load_tokenizer(str(model))
    short, long = tokenize_feeds(tok, TEXTS[:2], None, 64), tokenize_feeds(tok, TEXTS[2:], None, 64)
    for feeds in (short, long, short):
        want = ort_runner.predict(feeds)
        np.testing.assert_allclose(ov_runner.predict(feeds), want, atol=1e-5)  # quality path: dynamic shapes
        prepared = ov_runner.prepare(feeds)  # timed path: the IR reshaped to this call's length bucket
        assert all(i.get_partial_shape().is_static for i in prepared.request.get_compiled_model().inputs)
        length = feeds["input_ids"].shape[1]
        assert prepared.feeds["input_ids"].shape[1] == length_bucket(length) >= max(16, length)
        for name, got in ov_runner.outputs(prepared).items():
            np.testing.assert_allclose(got, dict(zip(ort_runner.output_names, ort_runner.session.run(None, feeds)))[name],
                                       atol=1e-5)
    buckets = {length_bucket(f["input_ids"].shape[1]) for f in (short, long)}
    assert len(ov_runner._static) == len(buckets)  # one compile per bucket, reused by every later call
    one_more = {n: np.pad(short[n], ((0, 0), (0, 1))) for n in short}  # one more (masked) token: the same bucket
    if length_bucket(short["input_ids"].shape[1] + 1) == length_bucket(short["input_ids"].shape[1]):
        before = len(ov_runner._static)
        ov_runner.prepare(one_more)
        assert len(ov_runner._static) == before
    assert [length_bucket(n) for n in (1, 16, 17, 33, 64, 65, 128, 129, 300, 384, 385, 512)] == \
        [16, 16, 32, 64, 64, 128, 128, 256, 384, 384, 512, 512]


def test_locate_reads_ir_files_and_folders(tmp_path, exported):
    from benchmarks.runners import locate

    _, out = exported
    folder = tmp_path / "ir"
    shutil.copytree(out / "openvino", folder)
    assert locate(folder / "openvino_model_int8.xml") == ("openvino", folder / "openvino_model_int8.xml")
    assert locate(folder) == ("openvino", folder / "openvino_model.xml")
    (folder / "openvino_model.bin").unlink()
    with pytest.raises(EdgepressError, match=r"has no weights file 'openvino_model.bin' beside it") as exc:
        locate(folder / "openvino_model.xml")
    assert "\n" not in str(exc.value)
    shutil.copy2(out / "model.onnx", folder / "model.onnx")
    with pytest.raises(EdgepressError, match="holds model.onnx and openvino_model.xml"):
        locate(folder)


def test_bench_run_cli_measures_an_xml_file(exported, tmp_path):
    from compress.cli.main import main

    _, out = exported
    main(["bench", "run", str(out / "openvino" / "openvino_model.xml"), "--task", "classification", "--seq", "8",
          "--warmup", "0", "--min-runs", "2", "--min-seconds", "0", "--threads", "1", "--no-session-memory",
          "--out", str(tmp_path / "b")])
    entry = json.loads((tmp_path / "b" / "report.json").read_text())["models"][0]
    assert entry["status"] == "ok" and entry["format"] == "openvino" and entry["latency_ms"]["p50"] > 0
    assert entry["runtime"]["hints"]["INFERENCE_NUM_THREADS"] == "1"


def test_a_damaged_ir_is_an_error_entry_in_one_line(tmp_path):
    (tmp_path / "openvino_model.xml").write_text("<net>cut off")
    (tmp_path / "openvino_model.bin").write_bytes(b"\0" * 16)
    entry = benchmark([ModelSpec("bad", tmp_path)], "classification", BenchSettings(**FAST))["models"][0]
    assert entry["status"] == "error" and entry["format"] == "openvino"
    assert entry["reason"].startswith(f"openvino cannot read '{tmp_path / 'openvino_model.xml'}': Unable to read the model")
    assert "\n" not in entry["reason"] and "Exception from" not in entry["reason"]


def test_missing_openvino_skips_the_ir_with_the_pip_hint(exported, monkeypatch):
    _, out = exported
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails, find_spec finds nothing
    rep = benchmark([ModelSpec("ov", out / "openvino" / "openvino_model.xml")], "classification",
                    BenchSettings(**FAST))
    assert rep["models"][0]["status"] == "skipped"
    assert rep["models"][0]["reason"] == "openvino is not installed: pip install 'edgepress[openvino]'"
