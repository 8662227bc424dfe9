"""A model's precision is read from its ONNX file, not guessed from its name (bench run's MODEL arguments)."""

from __future__ import annotations

import shutil

from benchmarks.cli.run import parse_model_arg
from benchmarks.identity import onnx_precision, shape_label
from compress.quantize.api import quantize_onnx
from tests.quantize.test_quantize import _cfg, _corpus, tiny_embedding  # noqa: F401  (fixture)


def test_onnx_precision_reads_the_file_not_its_name(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "q", ["dynamic", "fp16", "int4"], tok, calibration=_corpus(),
                           eval_data=_corpus(), config=_cfg())
    files = {m: tmp_path / "q" / rec["path"] for m, rec in report["methods"].items()}
    assert onnx_precision(onnx_path) == "fp32"
    assert {m: onnx_precision(p) for m, p in files.items()} == {"dynamic": "int8", "fp16": "fp16", "int4": "int4"}
    # a float16 file named as if it were quantized is still float16, and bench run's label says so
    misnamed = tmp_path / "model_int8.onnx"
    shutil.copy(files["fp16"], misnamed)
    spec = parse_model_arg(f"gpu={misnamed}")
    assert (spec.name, spec.precision) == ("gpu", "fp16")
    assert shape_label({"layers": 2, "heads": 4, "ffn": 37, "vocab": 99}, None, spec.precision).endswith("fp16")
    assert parse_model_arg(str(files["dynamic"])).precision == "int8"
    (tmp_path / "notes.txt").write_text("not a model")
    assert onnx_precision(tmp_path / "notes.txt") is None
    (tmp_path / "broken.onnx").write_bytes(b"\x00\x01 not protobuf")
    assert onnx_precision(tmp_path / "broken.onnx") is None
