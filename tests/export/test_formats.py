"""Every export format round-trips on a tiny model and agrees with eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.model.loading import mean_pool

SENTENCES = ["A short one.", "A somewhat longer sentence that pads the other one in the same batch, surely."]


def _encode(model_dir, names, texts=SENTENCES):
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(model_dir))(texts, padding=True, return_tensors="np")
    return {n: enc[n].astype(np.int64) for n in names}


def _torch_outputs(model_dir, head, feeds):
    from export.heads import load_for_export

    model = load_for_export(model_dir, head)
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    if head == "embedding":
        return [out.last_hidden_state.numpy(), mean_pool(out.last_hidden_state, torch.from_numpy(feeds["attention_mask"])).numpy()]
    return [out.logits.numpy()]


@pytest.mark.parametrize("arch,head", [("bert", "embedding"), ("distilbert", "mlm"), ("roberta", "regression"),
                                       ("bert", "classification")])
def test_onnx_round_trip_matches_pytorch(tiny_model_dir, tmp_path, arch, head):
    import onnx
    import onnxruntime as ort

    from export.api import export_model

    model_dir = tiny_model_dir(arch, head)
    res = export_model(model_dir, tmp_path / "out", head, ["onnx"])
    graph = onnx.load(res["files"]["onnx"]).graph
    names = [i.name for i in graph.input]
    expected_inputs = ["input_ids", "attention_mask"] + ([] if arch == "distilbert" else ["token_type_ids"])
    assert names == expected_inputs
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]
    assert res["metrics"]["parity_onnx"]["max_abs_diff"] < 1e-4
    assert res["metrics"]["parity_onnx"]["cases"] == 5 and len(res["metrics"]["parity_onnx"]["sequence_lengths"]) >= 3
    # independent check on a padded batch the exporter never saw
    feeds = _encode(model_dir, names)
    sess = ort.InferenceSession(res["files"]["onnx"], providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)
    want = _torch_outputs(model_dir, head, feeds)
    assert [o.name for o in graph.output] == (["last_hidden_state", "sentence_embedding"] if head == "embedding" else ["logits"])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4)
    assert (tmp_path / "out" / "tokenizer" / "tokenizer.json").is_file()


def test_optimized_onnx_fuses_every_layer(tiny_model_dir, tmp_path):
    from export.api import export_model

    res = export_model(tiny_model_dir("bert", "embedding"), tmp_path / "out", "embedding", ["onnx"], optimize=True)
    m = res["metrics"]
    assert m["fused_ops"]["Attention"] == m["num_layers"] == 2
    assert m["fused_ops"]["SkipLayerNormalization"] >= 2
    assert m["parity_onnx_optimized"]["max_abs_diff"] < 1e-4
    assert m["size_bytes"]["model.optimized.onnx"] > 0


def test_torchscript_and_lite_interpreter_round_trip(tiny_model_dir, tmp_path):
    from torch.jit.mobile import _load_for_lite_interpreter

    from export.api import export_model

    model_dir = tiny_model_dir("bert", "classification")
    res = export_model(model_dir, tmp_path / "out", "classification", ["torchscript", "ptl"])
    assert res["metrics"]["parity_torchscript"]["max_abs_diff"] < 1e-4
    assert res["metrics"]["parity_ptl"]["max_abs_diff"] < 1e-4
    names = ["input_ids", "attention_mask", "token_type_ids"]
    feeds = _encode(model_dir, names, ["Different text, different length than the trace example had at all."])
    want = _torch_outputs(model_dir, "classification", feeds)[0]
    args = [torch.from_numpy(feeds[n]) for n in names]
    traced = torch.jit.load(res["files"]["torchscript"])
    lite = _load_for_lite_interpreter(res["files"]["ptl"])
    with torch.no_grad():
        np.testing.assert_allclose(traced(*args)[0].numpy(), want, atol=1e-5)
        np.testing.assert_allclose(lite(*args)[0].numpy(), want, atol=1e-5)


def test_ort_format_and_operator_config(tiny_model_dir, tmp_path):
    import onnxruntime as ort

    from export.api import export_model

    model_dir = tiny_model_dir("distilbert", "embedding")
    res = export_model(model_dir, tmp_path / "out", "embedding", ["ort"])
    ort_path = res["files"]["ort"]
    assert ort_path.endswith(".ort")
    config = (tmp_path / "out" / "required_operators.config").read_text()
    assert "ai.onnx;17;" in config and "MatMul" in config
    feeds = _encode(model_dir, ["input_ids", "attention_mask"])
    got = ort.InferenceSession(ort_path, providers=["CPUExecutionProvider"]).run(None, feeds)
    want = _torch_outputs(model_dir, "embedding", feeds)
    assert float(np.abs(got[1] - want[1]).max()) < 1e-4
    assert res["metrics"]["parity_ort"]["min_cosine"] > 0.9999


def test_token_classification_and_qa_heads(tiny_model_dir, tmp_path):
    import transformers

    from export.api import export_model

    base = tiny_model_dir("bert", "embedding")
    for cls, task, outs, labels in [("BertForTokenClassification", "token-classification", ["logits"], 3),
                                    ("BertForQuestionAnswering", "question-answering", ["start_logits", "end_logits"], 2)]:
        folder = tmp_path / task
        config = transformers.AutoConfig.from_pretrained(base, num_labels=labels)
        torch.manual_seed(0)
        getattr(transformers, cls)(config).save_pretrained(folder)
        transformers.AutoTokenizer.from_pretrained(base).save_pretrained(folder)
        res = export_model(folder, tmp_path / f"{task}-out", task, ["onnx"])
        import onnx

        assert [o.name for o in onnx.load(res["files"]["onnx"]).graph.output] == outs
        assert res["metrics"]["parity_onnx"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize("head", ["embedding", "classification", "token-classification"])
def test_pte_round_trip_or_clear_refusal(tiny_model_dir, tmp_path, head):
    from export.api import export_model
    from export.errors import FormatUnavailableError
    from export.mobile import executorch_available

    model_dir = tiny_model_dir("bert", head)
    ok, why = executorch_available()
    if not ok:
        with pytest.raises(FormatUnavailableError, match="pip install 'executorch"):
            export_model(model_dir, tmp_path / "out", head, ["pte"])
        assert not (tmp_path / "out" / "model.pte").exists()
        return
    res = export_model(model_dir, tmp_path / "out", head, ["pte"])
    parity = res["metrics"]["parity_executorch"]
    assert parity["enforced"] and parity["max_abs_diff"] < 1e-4 and parity["bound_used"] <= 1.0
    assert res["metrics"]["size_bytes"]["model.pte"] > 10_000
    # independent check: the ExecuTorch runtime on a padded batch the exporter never saw, against eager PyTorch
    from executorch.runtime import Runtime

    feeds = _encode(model_dir, ["input_ids", "attention_mask", "token_type_ids"])
    method = Runtime.get().load_program(res["files"]["executorch"]).load_method("forward")
    got = method.execute([torch.from_numpy(v) for v in feeds.values()])
    want = _torch_outputs(model_dir, head, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-4)
