"""One pooling: a CLS-pooling teacher's student is scored and ranked with CLS pooling, in the quantize guard (files
that output token vectors only) and in prune importance (layer scores, the SimCSE loss), not with a mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compress.data.rows import TextData, builtin_pydoc_sentences
from compress.model.interface import ModelInterface

CLS = ModelInterface("embedding", pooling="cls", normalize=False)


class _Hidden(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state


def _hidden_only_onnx(model_dir, out):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir).eval()
    enc = AutoTokenizer.from_pretrained(model_dir)(["a b c", "d"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    torch.onnx.export(_Hidden(model), tuple(enc[n] for n in names), str(out), input_names=names,
                      output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return model


def test_quantize_guard_pools_token_outputs_as_the_teacher(tiny_model_dir, tmp_path):
    from compress.model.loading import load_tokenizer
    from compress.quantize.evaluate import build_eval_set, run_model

    path = tiny_model_dir("bert", "embedding")
    _hidden_only_onnx(path, tmp_path / "hidden.onnx")
    tok = load_tokenizer(str(path))
    texts = builtin_pydoc_sentences()[:5]
    cls = run_model(tmp_path / "hidden.onnx",
                    build_eval_set(tok, TextData(texts), "embedding", tmp_path / "hidden.onnx", 32, 5, CLS))["emb_a"]
    mean = run_model(tmp_path / "hidden.onnx",
                     build_eval_set(tok, TextData(texts), "embedding", tmp_path / "hidden.onnx", 32, 5))["emb_a"]
    from benchmarks.feeds import tokenize_feeds
    from benchmarks.sessions import open_session

    feeds = tokenize_feeds(tok, texts, None, 32, ["input_ids", "attention_mask", "token_type_ids"])
    hidden = open_session(tmp_path / "hidden.onnx").run(None, feeds)[0]
    mask = feeds["attention_mask"][..., None]
    np.testing.assert_allclose(cls, hidden[:, 0], atol=1e-5)
    np.testing.assert_allclose(mean, (hidden * mask).sum(1) / mask.sum(1), atol=1e-5)
    assert not np.allclose(cls, mean, atol=1e-3)


def _batches(tok, texts):
    enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    return [dict(enc)]


def test_prune_layer_scores_pool_as_the_teacher(tiny_model_dir):
    from compress.model.loading import load_model, load_tokenizer
    from compress.prune.importance import layer_scores

    path = tiny_model_dir("bert", "embedding")
    model, tok = load_model(str(path), "embedding").eval(), load_tokenizer(str(path))
    batches = _batches(tok, builtin_pydoc_sentences()[:6])
    got = layer_scores(model, batches, CLS)
    stack = model.encoder.layer
    want = []
    with torch.inference_mode():
        full = model(**batches[0]).last_hidden_state[:, 0]
        for i in range(len(stack)):
            model.encoder.layer = torch.nn.ModuleList([m for j, m in enumerate(stack) if j != i])
            without = model(**batches[0]).last_hidden_state[:, 0]
            want.append(float((1 - F.cosine_similarity(full, without, dim=-1)).mean()))
        model.encoder.layer = stack
    assert got == pytest.approx(want, abs=1e-5)
    assert layer_scores(model, batches) != pytest.approx(want, abs=1e-5)  # the mean pools otherwise


def test_prune_simcse_loss_pools_as_the_teacher(tiny_model_dir):
    from compress.model.loading import load_model, load_tokenizer
    from compress.prune.importance import task_loss

    path = tiny_model_dir("bert", "embedding")
    model, tok = load_model(str(path), "embedding").eval(), load_tokenizer(str(path))  # eval: both views alike
    batch = _batches(tok, builtin_pydoc_sentences()[:6])[0]
    got = task_loss(model, batch, "embedding", tok, torch.Generator(), CLS)
    with torch.inference_mode():
        z = model(**batch).last_hidden_state[:, 0]
        sim = F.cosine_similarity(z.unsqueeze(1), z.unsqueeze(0), dim=-1) / 0.05
        want = F.cross_entropy(sim, torch.arange(sim.shape[0]))
    assert float(got) == pytest.approx(float(want), abs=1e-5)
