"""The app bundle: manifest valid against the schema, hashes right, reference script reproduces PyTorch."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SENTENCE = "The exported model must give the same vector as PyTorch."


def test_bundle_reference_script_reproduces_pytorch(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from compress.model.loading import mean_pool
    from export.bundle import export_bundle, validate_manifest
    from export.heads import load_for_export

    model_dir = tiny_model_dir("bert", "embedding")
    res = export_bundle(model_dir, tmp_path / "bundle", "embedding", formats=["onnx"])
    bundle = tmp_path / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    # no max_length asked: the model's own limit (130 position embeddings; the tokenizer sets none)
    assert manifest["pooling"]["mode"] == "mean" and manifest["max_sequence_length"] == 130
    assert manifest["tokenizer"]["lowercase"] is True and manifest["tokenizer"]["special_tokens"]["cls"]["id"] == 2
    assert [o["name"] for o in manifest["outputs"]] == ["last_hidden_state", "sentence_embedding"]
    assert manifest["outputs"][1]["shape"] == ["batch", 32]
    for name, info in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == info["sha256"]
    assert {"model.onnx", "reference.py", "tokenizer/tokenizer.json", "tokenizer/vocab.txt"} <= set(manifest["files"])

    proc = subprocess.run([sys.executable, str(bundle / "reference.py"), SENTENCE], capture_output=True, text=True,
                          timeout=120, check=True)
    got = np.asarray(json.loads(proc.stdout)["sentence_embedding"])[None]
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tok([SENTENCE], return_tensors="pt")
    with torch.no_grad():
        hidden = load_for_export(model_dir, "embedding")(**enc).last_hidden_state
    want = mean_pool(hidden, enc["attention_mask"]).numpy()
    assert got.shape == want.shape == (1, 32)
    assert float(np.abs(got - want).max()) < 1e-4
    assert res["metrics"]["parity_onnx"]["max_abs_diff"] < 1e-4


def test_bundle_with_labels_ort_and_quantized_onnx(tiny_model_dir, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from export.api import export_model

    model_dir = tiny_model_dir("bert", "classification")
    fp32 = export_model(model_dir, tmp_path / "plain", "classification", ["onnx"])
    int8 = tmp_path / "model.int8.onnx"
    quantize_dynamic(fp32["files"]["onnx"], str(int8), weight_type=QuantType.QInt8)
    res = export_model(model_dir, tmp_path / "bundle", "classification", ["onnx", "ort"], bundle=True,
                       quantized_onnx=int8)
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["labels"]["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
    assert json.loads((tmp_path / "bundle" / "labels.json").read_text())["1"] == "LABEL_1"
    formats = {(m["format"], m["precision"]) for m in manifest["models"]}
    assert formats == {("onnx", "fp32"), ("ort", "fp32"), ("onnx", "int8")}
    q = next(m for m in manifest["models"] if m["precision"] == "int8")
    assert q["parity"]["enforced"] is False and q["parity"]["min_cosine"] > 0.5
    assert manifest["quantization"]["quantized_ops"].get("MatMulInteger", 0) + \
        manifest["quantization"]["quantized_ops"].get("DynamicQuantizeLinear", 0) > 0
    assert "required_operators.config" in manifest["files"]
    proc = subprocess.run([sys.executable, str(tmp_path / "bundle" / "reference.py"), "A sentence.", "--model",
                           "model.ort", "--raw"], capture_output=True, text=True, timeout=120, check=True)
    assert np.asarray(json.loads(proc.stdout)["logits"]).shape == (1, 2)
    proc = subprocess.run([sys.executable, str(tmp_path / "bundle" / "reference.py"), "A sentence."],
                          capture_output=True, text=True, timeout=120, check=True)
    pred = json.loads(proc.stdout)
    assert pred["label"] in ("LABEL_0", "LABEL_1") and abs(sum(pred["scores"].values()) - 1) < 1e-6
    assert len(res["models"]) == 3


def test_schema_rejects_a_broken_manifest(tiny_model_dir, tmp_path):
    from export.bundle import export_bundle, validate_manifest
    from export.errors import ExportError

    export_bundle(tiny_model_dir("distilbert", "mlm"), tmp_path / "b", "mlm")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    vocab_size = len((tmp_path / "b" / "tokenizer" / "vocab.txt").read_text().split())
    assert manifest["outputs"][0]["shape"] == ["batch", "sequence", vocab_size]
    assert [i["name"] for i in manifest["inputs"]] == ["input_ids", "attention_mask"]
    broken = dict(manifest, inputs=[dict(manifest["inputs"][0], dtype="int32")] + manifest["inputs"][1:])
    with pytest.raises(ExportError, match="inputs/0/dtype"):
        validate_manifest(broken)
    missing = {k: v for k, v in manifest.items() if k != "files"}
    with pytest.raises(ExportError, match="'files' is a required property"):
        validate_manifest(missing)


@pytest.mark.parametrize("table", ["uint8", "int4"])
def test_a_four_bit_embedding_table_ships_as_ort_too_unless_it_is_an_int4_tensor(tiny_model_dir, tmp_path, table):
    """edgepress stores 4-bit tables as uint8 nibble pairs, which the ORT format holds: the bundle gets its .ort.
    A file whose table is an INT4 tensor (ORT's quantizer as it writes it) keeps only the .onnx, and says why."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from compress.quantize.api import quantize_onnx
    from compress.quantize.config import QuantizeConfig
    from compress.quantize.graph import word_embedding_gathers
    from export.api import export_model
    from export.bundle import _add_quantized
    from export.core import prepare
    from tests.quantize.helpers import TEXTS

    model_dir = tiny_model_dir("bert", "classification")
    fp32 = export_model(model_dir, tmp_path / "plain", "classification", ["onnx"])
    from compress.data.rows import TextData

    if table == "uint8":
        cfg = QuantizeConfig.model_validate({"embedding": {"bits": 4}, "latency": {"runs": 3, "warmup": 0},
                                             "guard": {"eval_samples": 8, "fallbacks": False}})
        rep = quantize_onnx(Path(fp32["files"]["onnx"]), tmp_path / "q", ["dynamic"], str(model_dir),
                            eval_data=TextData(TEXTS, source="t"), task="classification", config=cfg)
        src = tmp_path / "q" / rep["methods"]["dynamic"]["path"]
    else:
        model = onnx.load(fp32["files"]["onnx"])
        words = word_embedding_gathers(model)
        quant = MatMulNBitsQuantizer(model, bits=4, block_size=16, op_types_to_quantize=("Gather",),
                                     quant_axes=(("Gather", 1),),
                                     nodes_to_exclude=[n.name for n in model.graph.node
                                                       if n.op_type == "Gather" and n.name not in words])
        quant.process()
        src = tmp_path / "int4.onnx"
        quant.model.save_model_to_file(str(src))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    entries, quant = _add_quantized(prepare(model_dir, "classification"), src, bundle, with_ort=True)
    assert quant["quantized_ops"]["GatherBlockQuantized"] == 1
    if table == "uint8":
        assert [e["format"] for e in entries] == ["onnx", "ort"] and (bundle / "model.int8.ort").is_file()
        assert "ort_skipped" not in quant and entries[1]["parity"]["min_cosine"] > 0.9
    else:
        assert [e["format"] for e in entries] == ["onnx"] and not (bundle / "model.int8.ort").exists()
        assert "int4" in quant["ort_skipped"]
    assert entries[0]["parity"]["min_cosine"] > 0.9
