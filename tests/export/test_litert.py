"""LiteRT export: fp32 / fp16 / INT8 .tflite files, converted in the converter's own env, loaded back with the
core's ai_edge_litert Interpreter and compared with PyTorch on tiny models.

Marked ``litert_converter``: the first test on a machine installs litert-torch into its env (~40 s, network);
later runs reuse it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("ai_edge_litert", reason="pip install 'edgepress[litert]'")
pytestmark = pytest.mark.litert_converter

TEXTS = ["A sentence the export never saw, long enough to need the second bucket of the file, surely it is, yes.",
         "Short one."]


def _feeds(model_dir, names, max_length):
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(model_dir))(TEXTS, padding=True, truncation=True, max_length=max_length,
                                                        return_tensors="np")
    return {n: enc[n].astype(np.int64) for n in names}


def _pytorch(model_dir, task, feeds, max_length):
    from export.core import prepare

    prep = prepare(model_dir, task, max_length)
    with torch.no_grad():
        outs = prep.wrapper(*[torch.from_numpy(feeds[n]) for n in prep.input_names])
    return dict(zip(prep.output_names, (o.numpy() for o in outs)))


@pytest.mark.parametrize("arch,task", [("bert", "embedding"), ("bert", "classification"),
                                       ("distilbert", "token-classification")])
def test_litert_files_match_pytorch(tiny_model_dir, tmp_path, arch, task):
    from ai_edge_litert.interpreter import Interpreter

    from export.api import export_model

    model_dir = tiny_model_dir(arch, task)
    res = export_model(model_dir, tmp_path / "out", task, ["onnx", "litert"], max_length=64)
    m = res["metrics"]
    folder = tmp_path / "out" / "litert"
    assert sorted(p.name for p in folder.iterdir()) == ["model.tflite", "model_fp16.tflite", "model_int8.tflite"]
    fp32 = m["parity_litert"]
    assert fp32["max_abs_diff"] < 1e-4 and fp32["min_cosine"] > 0.9999 and fp32["bound_used"] <= 1
    assert fp32["cases"] == 5 and fp32["shapes"]["sequence_lengths"] == [32, 64]
    for precision in ("fp16", "int8"):
        q = m[f"quantized_litert_{precision}"]
        assert q["floor"] == 0.98 and q["fidelity"]["value"] >= 0.98, q
    if task != "token-classification":  # tiny token logits: argmax agreement, raw drift not bounded
        assert m["quantized_litert_fp16"]["max_abs_diff"] < m["quantized_litert_int8"]["max_abs_diff"]
    sizes = m["size_bytes"]
    assert sizes["litert/model_int8.tflite"] < sizes["litert/model_fp16.tflite"] < sizes["litert/model.tflite"]

    # independent check: the raw interpreter, the signature that holds the feed, names as the ONNX file's
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if arch == "bert" else [])
    feeds = _feeds(model_dir, names, 64)
    length = feeds["input_ids"].shape[1]
    assert 32 < length <= 64
    want = _pytorch(model_dir, task, feeds, 64)
    interp = Interpreter(model_path=str(folder / "model.tflite"))
    assert sorted(interp.get_signature_list()) == ["len_32", "len_64"]
    sig = interp.get_signature_runner("len_64")
    assert sorted(sig.get_input_details()) == sorted(names)
    assert sorted(sig.get_output_details()) == sorted(want)
    for row in range(len(TEXTS)):
        got = sig(**{n: np.pad(feeds[n][row:row + 1], [(0, 0), (0, 64 - length)]).astype(np.int32) for n in names})
        for name, ref in want.items():
            out = got[name][:, :length] if ref.ndim == 3 else got[name]
            np.testing.assert_allclose(out, ref[row:row + 1], atol=1e-4)


def test_buckets_follow_max_length():
    from export.litert import bucket_lengths

    assert bucket_lengths(256) == [32, 64, 128, 256]
    assert bucket_lengths(130) == [32, 64, 128, 130]
    assert bucket_lengths(20) == [20]


def test_missing_interpreter_is_refused_in_one_line_before_any_work(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from tests.cli_errors import expect_one_line_error

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # `import ai_edge_litert` fails, find_spec finds nothing
    out = tmp_path / "exp"
    expect_one_line_error(capsys, ["export", str(tiny_model_dir("bert", "classification")), str(out), "--task",
                                   "classification", "--set", "export.formats=[onnx, litert]"],
                          1, ["ai-edge-litert", "is not installed", "pip install 'edgepress[litert]'"])
    assert not list(out.rglob("model.onnx"))  # refused before the ONNX export, not after it


def test_converter_env_failure_is_refused_in_one_line_before_any_work(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """No network: the converter's env cannot be made; the export stops before writing model.onnx, saying pip's error."""
    from export import converter_env
    from tests.cli_errors import expect_one_line_error

    def offline(spec, target, torch_version):
        raise converter_env.ConverterEnvError(f"cannot install {spec.label} into its own environment: pip says: "
                                              "ERROR: Could not find a version that satisfies the requirement")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(converter_env, "_build", offline)
    out = tmp_path / "exp"
    expect_one_line_error(capsys, ["export", str(tiny_model_dir("bert", "classification")), str(out), "--task",
                                   "classification", "--set", "export.formats=[onnx, litert]"],
                          1, ["litert-torch", "pip says: ERROR: Could not find a version"])
    assert not list(out.rglob("model.onnx"))
    assert not [p for p in (tmp_path / "cache" / "edgepress" / "envs").iterdir() if p.is_dir()]


def test_cli_export_writes_litert_files_as_stage_outputs(tiny_model_dir, tmp_path):
    from compress.cli.main import main

    out = tmp_path / "exp"
    main(["export", str(tiny_model_dir("bert", "classification")), str(out), "--task", "classification",
          "--set", "export.formats=[onnx, litert]", "--set", "export.max_length=40"])
    root = next(out.rglob("stage.json")).parent
    stage = json.loads((root / "stage.json").read_text())
    assert stage["outputs"]["litert"] == "litert/model.tflite"
    assert stage["outputs"]["litert_fp16"] == "litert/model_fp16.tflite"
    assert stage["outputs"]["litert_int8"] == "litert/model_int8.tflite"
    student = stage["metrics"]["student"]
    assert student["parity_litert"]["bound_used"] <= 1.0
    assert student["parity_litert"]["shapes"]["sequence_lengths"] == [32, 40]
    assert student["quantized_litert_int8"]["fidelity"]["value"] >= 0.98


@pytest.mark.integration
def test_teacher_litert_files_keep_sentence_transformers_embeddings(minilm_path, tmp_path):
    """The packaged MiniLM teacher: fp32 .tflite cosine >= 0.999 and fp16 / INT8 >= 0.98 to
    ``SentenceTransformer.encode`` on real sentences the export never saw, through the bench runner."""
    from sentence_transformers import SentenceTransformer

    from benchmarks.feeds import tokenize_feeds
    from benchmarks.runners import runner_class
    from benchmarks.runners.base import Threads
    from compress.data.rows import builtin_pydoc_sentences
    from compress.model.loading import load_tokenizer
    from export.api import export_model

    res = export_model(minilm_path, tmp_path / "out", "embedding", ["onnx", "litert"])
    assert res["metrics"]["parity_litert"]["shapes"]["sequence_lengths"] == [32, 64, 128, 256]
    texts = builtin_pydoc_sentences(min_words=4, max_words=80)[100:116]
    want = SentenceTransformer(minilm_path, device="cpu").encode(texts, convert_to_numpy=True)
    feeds = tokenize_feeds(load_tokenizer(minilm_path), texts, None, 256)
    folder = tmp_path / "out" / "litert"
    for name, floor in [("model.tflite", 0.999), ("model_fp16.tflite", 0.98), ("model_int8.tflite", 0.98)]:
        runner = runner_class("litert")(folder / name, "embedding", Threads(2))
        runner.load()
        got = runner.predict(feeds)
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        assert cos.min() >= floor, (name, cos.min())
