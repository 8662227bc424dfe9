"""OpenVINO IR export: the fp32 IR within the export tolerance of PyTorch, the NNCF INT8 IR above the fidelity floor,
both loaded back with openvino.Core; a missing openvino is refused in one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.cli_errors import expect_one_line_error

FIDELITY = {"embedding": "fidelity_cosine", "classification": "top1_agreement", "token-classification": "word_agreement"}


def _feeds(model_dir, texts):
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(model_dir))(texts, padding=True, return_tensors="np")
    return {n: enc[n].astype(np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.mark.parametrize("head", ["embedding", "classification", "token-classification"])
def test_fp32_and_int8_ir_are_checked_against_pytorch(tiny_model_dir, tmp_path, head):
    import openvino as ov
    import openvino.properties.hint as hints
    import onnxruntime as ort

    from export.api import export_model
    from export.files import file_size

    model_dir = tiny_model_dir("bert", head)
    res = export_model(model_dir, tmp_path / "out", head, ["onnx", "openvino"])
    m = res["metrics"]
    xml = tmp_path / "out" / "openvino" / "openvino_model.xml"
    int8 = tmp_path / "out" / "openvino" / "openvino_model_int8.xml"
    assert res["files"]["openvino"] == str(xml)
    assert xml.with_suffix(".bin").is_file() and int8.with_suffix(".bin").is_file()

    fp32 = m["parity_openvino"]  # against PyTorch on 5 real-text batches of several lengths
    assert fp32["enforced"] and fp32["cases"] == 5 and len(fp32["sequence_lengths"]) >= 3
    assert fp32["bound_used"] <= 1.0 and fp32["min_cosine"] >= 0.9999 and fp32["max_abs_diff"] < 1e-4
    q = m["quantized_openvino_int8"]
    assert q["fidelity"]["name"] == FIDELITY[head] and q["fidelity"]["value"] >= 0.98 and q["floor"] == 0.98
    assert m["size_bytes"]["openvino/openvino_model_int8.xml"] == file_size(int8) < file_size(xml)

    core = ov.Core()
    ops = {op.get_type_name() for op in core.read_model(str(int8)).get_ops()}
    assert "FakeQuantize" in ops  # NNCF's INT8 quantizers are in the file
    assert "FakeQuantize" not in {op.get_type_name() for op in core.read_model(str(xml)).get_ops()}

    # the fp32 IR on a batch the export never saw, in f32, equals the ONNX file in ONNX Runtime
    feeds = _feeds(model_dir, ["An unseen sentence.", "Another unseen sentence, longer than the first one by far."])
    compiled = core.compile_model(str(xml), "CPU", {hints.inference_precision: ov.Type.f32})
    got = compiled(feeds)
    sess = ort.InferenceSession(res["files"]["onnx"], providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert [o.get_any_name() for o in compiled.outputs] == names
    for name, want in zip(names, sess.run(None, feeds)):
        np.testing.assert_allclose(got[name], want, atol=1e-5)


def test_cli_export_writes_both_irs_as_stage_outputs(tiny_model_dir, tmp_path):
    from compress.cli.main import main

    out = tmp_path / "exp"
    main(["export", str(tiny_model_dir("bert", "classification")), str(out), "--task", "classification",
          "--set", "export.formats=[onnx, openvino]"])
    root = next(out.rglob("stage.json")).parent
    stage = json.loads((root / "stage.json").read_text())
    assert stage["outputs"]["openvino"] == "openvino/openvino_model.xml"
    assert stage["outputs"]["openvino_int8"] == "openvino/openvino_model_int8.xml"
    assert (root / stage["outputs"]["openvino_int8"]).with_suffix(".bin").is_file()
    student = stage["metrics"]["student"]
    assert student["parity_openvino"]["bound_used"] <= 1.0
    assert student["quantized_openvino_int8"]["fidelity"]["value"] >= 0.98


def test_missing_openvino_is_refused_in_one_line_before_any_work(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails, find_spec finds nothing
    out = tmp_path / "exp"
    _, message = expect_one_line_error(capsys, ["export", str(tiny_model_dir("bert", "classification")), str(out),
                                                "--task", "classification", "--set", "export.formats=[onnx, openvino]"],
                                       1, ["openvino is not installed", "pip install 'edgepress[openvino]'"])
    assert not list(out.rglob("model.onnx"))  # refused before the ONNX export, not after it

