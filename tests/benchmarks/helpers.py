"""Test helpers: export a tiny saved model to ONNX / TorchScript ourselves (independent of export/)."""

from __future__ import annotations

from pathlib import Path

import torch


class _Wrapped(torch.nn.Module):
    """Embedding models get last_hidden_state + mean-pooled sentence_embedding; QA models start/end logits; other
    task models give logits."""

    def __init__(self, model: torch.nn.Module, task: str) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        if self.task == "embedding":
            h = out.last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return h, (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        if self.task == "question-answering":
            return out.start_logits, out.end_logits
        return out.logits


def load(model_dir: Path, task: str) -> torch.nn.Module:
    from compress.model.loading import load_model

    return _Wrapped(load_model(str(model_dir), task), task).eval()


def dummy(seq: int = 8) -> tuple[torch.Tensor, ...]:
    ids = torch.randint(5, 100, (2, seq))
    return ids, torch.ones_like(ids), torch.zeros_like(ids)


def export_onnx(model_dir: Path, task: str, path: Path) -> Path:
    """ONNX per docs/architecture.md: int64 inputs with dynamic batch/sequence axes."""
    names = {"embedding": ["last_hidden_state", "sentence_embedding"],
             "question-answering": ["start_logits", "end_logits"]}.get(task, ["logits"])
    axes = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    axes.update({n: {0: "batch"} for n in names})
    if task in ("embedding", "token-classification"):
        axes[names[0]] = {0: "batch", 1: "sequence"}  # last_hidden_state / token logits
    if task == "question-answering":
        axes.update({n: {0: "batch", 1: "sequence"} for n in names})
    torch.onnx.export(load(model_dir, task), dummy(), str(path), input_names=list(axes)[:3], output_names=names,
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def export_torchscript(model_dir: Path, task: str, path: Path) -> Path:
    """torch.jit.trace of the same wrapper (.pt)."""
    traced = torch.jit.trace(load(model_dir, task), dummy(), strict=False)
    traced.save(str(path))
    return path


def tokenized(tokenizer_dir: Path, texts: list[str], max_length: int = 64) -> dict:
    """int64 feeds for ``texts`` with the exported folder's tokenizer, padded to the longest."""
    from benchmarks.feeds import tokenize_feeds
    from compress.model.loading import load_tokenizer

    return tokenize_feeds(load_tokenizer(str(tokenizer_dir)), texts, None, max_length)


def assert_matches_onnx_runtime(runner, ort, tokenizer_dir: Path, cases: list[tuple[int, int]], depth: int = 2) -> None:
    """``runner``'s outputs and task predictions equal ONNX Runtime's (``ort``) on real-word feeds of each (batch,
    words) case, within twice the export tolerance."""
    import numpy as np

    from export.parity import Tolerance

    tol = Tolerance(depth=depth)
    words = "the quick brown fox jumps over the lazy dog again and again".split()
    for batch, n_words in cases:
        texts = [" ".join(words * 4)[: 6 * n_words - i] for i in range(batch)]
        feeds = tokenized(tokenizer_dir, texts)
        got, want = runner.outputs(runner.prepare(feeds)), ort.outputs(ort.prepare(feeds))
        for name in want:
            assert got[name].shape == want[name].shape
            allowed = 2 * tol.allowed(float(np.abs(want[name]).max()), feeds["input_ids"].shape[1])
            assert float(np.abs(got[name] - want[name]).max()) <= allowed, (name, batch, n_words)
        np.testing.assert_allclose(runner.predict(feeds), ort.predict(feeds), atol=1e-4)
