"""The quantize-method registry: every entry looked up and run on its own on a tiny ONNX model, the table
matches the config's method names, and an unknown name is refused in one line."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from compress.core.errors import EdgepressError
from compress.quantize import methods as M
from compress.quantize.config import Method, QuantizeConfig
from tests.quantize.helpers import TEXTS, export_tiny, mean_cosine, run_onnx


@pytest.fixture
def prepared(tiny_model_dir, tmp_path):
    """A tiny embedding model exported and prepared for quantization as quantize_onnx does, with its tokenizer."""
    from transformers import AutoTokenizer

    from compress.quantize.graph import prepare_for_quantization

    model_dir = tiny_model_dir("bert", "embedding")
    onnx_path = export_tiny(model_dir, "embedding", tmp_path / "model.onnx")
    prepare_for_quantization(onnx_path, tmp_path / "prepared.onnx")
    return onnx_path, tmp_path / "prepared.onnx", AutoTokenizer.from_pretrained(model_dir)


def _feeds(tok, src: Path):
    from benchmarks.sessions import input_names, open_session
    from compress.quantize.calibration import TextCalibrationFeeds

    return TextCalibrationFeeds(tok, TEXTS, None, input_names(open_session(src)), 32, "test")


def test_registry_names_are_the_config_methods():
    assert list(M.METHODS) == list(typing.get_args(Method))
    for name, spec in M.METHODS.items():
        assert spec.name == name and spec.run.__doc__
        assert M.method_spec(name) is spec


def test_registry_keeps_precision_file_tag_and_needs():
    assert M.PRECISION == {"dynamic": "int8", "static": "int8", "nncf": "int8", "qat": "int8", "fp16": "fp16",
                           "int4": "int4"}
    assert M.FILE_TAG == {"dynamic": "int8-dynamic", "static": "int8-static", "nncf": "int8-nncf",
                          "qat": "int8-qat", "fp16": "fp16", "int4": "int4"}
    calibrated = {n for n in M.METHODS if M.needs_any([n], M.CALIBRATION_FEEDS)}
    assert calibrated == {"static", "nncf", "qat"}
    assert {n for n, s in M.METHODS.items() if M.PLAIN_GRAPH in s.needs} == {"nncf"}
    assert {n for n, s in M.METHODS.items() if M.PYTORCH_STUDENT in s.needs} == {"qat"}
    assert not M.needs_any(["dynamic", "fp16", "int4"], M.CALIBRATION_FEEDS)


@pytest.mark.parametrize("method,kept", [
    ("dynamic", {"method", "per_channel", "reduce_range", "weight_type", "embedding_bits", "float_blocks"}),
    ("static", {"method", "per_channel", "reduce_range", "weight_type", "activation_type", "calibration",
                "weight_matmuls_only", "embedding_bits", "float_blocks"}),
    ("nncf", {"method", "per_channel", "reduce_range", "weight_type", "activation_type", "smooth_quant_alpha",
              "embedding_bits", "float_blocks"}),
    ("qat", {"method", "activation_type", "float_blocks"}),  # exported from PyTorch: no word-embedding pass
    ("fp16", {"method", "float_blocks"}),
    ("int4", {"method", "embedding_bits", "float_blocks"}),
])
def test_describe_keeps_only_the_settings_each_method_reads(method, kept):
    assert set(M.Settings(method=method).describe()) == kept


def test_unknown_method_is_refused_in_one_line():
    with pytest.raises(EdgepressError) as err:
        M.method_spec("awq")
    message = str(err.value)
    assert message == "unknown quantize method 'awq'; choose from dynamic, static, nncf, qat, fp16, int4"
    assert "\n" not in message
    with pytest.raises(EdgepressError, match=re.escape("unknown quantize method 'gptq'")):
        M.needs_any(["dynamic", "gptq"], M.CALIBRATION_FEEDS)


def test_unknown_method_in_a_config_is_still_the_config_error():
    from compress.config import load_config
    from compress.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config(None, ["quantize.methods=[awq]"])
    problem = [line for line in str(err.value).splitlines() if "quantize.methods" in line]
    assert len(problem) == 1 and "'dynamic', 'static', 'nncf', 'qat', 'fp16' or 'int4'" in problem[0]


def _ops(path: Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("method,op", [("dynamic", "DynamicQuantizeLinear"), ("static", "QuantizeLinear"),
                                       ("nncf", "QuantizeLinear"), ("int4", "MatMulNBits")])
def test_each_onnx_entry_runs_on_its_own(method, op, prepared, tmp_path):
    onnx_path, src, tok = prepared
    spec = M.method_spec(method)
    feeds = _feeds(tok, src) if M.CALIBRATION_FEEDS in spec.needs else None
    job = M.MethodInputs(src=src, cfg=QuantizeConfig(), work=tmp_path / "work", feeds=feeds)
    dst = tmp_path / f"{method}.onnx"
    spec.quantizer(job)(M.Settings(method=method), dst, [])
    assert op in _ops(dst) and op not in _ops(src)
    ref = run_onnx(onnx_path, tok, TEXTS, "sentence_embedding")
    assert mean_cosine(ref, run_onnx(dst, tok, TEXTS, "sentence_embedding")) >= 0.98
    if method == "static":
        assert (tmp_path / "work" / "calib" / "calibration-minmax.json").is_file()  # its cache lives in job.work


def test_fp16_entry_converts_weights_and_keeps_io_types(prepared, tmp_path):
    import onnx

    onnx_path, src, tok = prepared
    dst = tmp_path / "fp16.onnx"
    job = M.MethodInputs(src=src, cfg=QuantizeConfig(), work=tmp_path / "work")
    M.method_spec("fp16").quantizer(job)(M.Settings(method="fp16"), dst, [])
    model = onnx.load(str(dst))
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer) > 10
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # keep_io_types default
    ref = run_onnx(onnx_path, tok, TEXTS, "sentence_embedding")
    assert mean_cosine(ref, run_onnx(dst, tok, TEXTS, "sentence_embedding")) >= 0.99


def test_exclude_reaches_the_method(prepared, tmp_path):
    """The guard's float blocks (node names) are passed through: excluded MatMuls stay unquantized."""
    import onnx

    _, src, _ = prepared
    matmuls = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "MatMul"]
    job = M.MethodInputs(src=src, cfg=QuantizeConfig(), work=tmp_path / "work")
    run = M.method_spec("int4").quantizer(job)
    run(M.Settings(method="int4"), tmp_path / "all.onnx", [])
    run(M.Settings(method="int4"), tmp_path / "some.onnx", matmuls[:3])
    count = lambda p: sum(n.op_type == "MatMulNBits" for n in onnx.load(str(p)).graph.node)  # noqa: E731
    assert count(tmp_path / "some.onnx") == count(tmp_path / "all.onnx") - 3


def test_qat_entry_hands_the_student_feeds_and_options_to_quantize_qat(monkeypatch, tmp_path):
    import compress.quantize.qat as qat

    seen = {}

    def fake_qat(source, dst, activation_type, feeds, task, max_length, opts, work):
        seen.update(source=source, dst=dst, activation_type=activation_type, feeds=feeds, task=task,
                    max_length=max_length, opts=opts, work=work)
        return {"steps": 3}

    monkeypatch.setattr(qat, "quantize_qat", fake_qat)
    cfg = QuantizeConfig(methods=["qat"], qat={"max_steps": 7})
    job = M.MethodInputs(src=tmp_path / "unused.onnx", cfg=cfg, work=tmp_path, feeds="FEEDS", qat=("SRC", "mlm", 64))
    s = M.Settings(method="qat", activation_type="qint8")
    assert M.method_spec("qat").quantizer(job)(s, tmp_path / "q.onnx", ["ignored"]) == {"qat": {"steps": 3}}
    assert seen == {"source": "SRC", "dst": tmp_path / "q.onnx", "activation_type": "qint8", "feeds": "FEEDS",
                    "task": "mlm", "max_length": 64, "opts": cfg.qat, "work": tmp_path}
