"""Test helpers: export a tiny model to ONNX (the architecture.md interface) without the export package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

TEXTS = [
    "The function returns a new list of strings.",
    "A module can define classes and variables.",
    "This method raises an exception when the file is missing.",
    "The object is created by calling the class.",
    "Arguments are passed by assignment in Python.",
    "An iterator returns the next item of the sequence.",
    "The default value is evaluated only once.",
    "Each thread has its own local data.",
]


class _EmbeddingWrapper(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return hidden, (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class _LogitsWrapper(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


class _SpanWrapper(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.start_logits, out.end_logits


def export_tiny(model_dir: Path, task: str, out: Path) -> Path:
    """torch.onnx.export (dynamo=False) of a tiny BERT with the embedding or logits outputs (token logits for
    token-classification, start/end logits for question-answering)."""
    from transformers import (AutoModel, AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                              AutoModelForTokenClassification, AutoTokenizer)

    tok = AutoTokenizer.from_pretrained(model_dir)
    if task == "question-answering":
        wrapper, outputs = _SpanWrapper(AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()), \
            ["start_logits", "end_logits"]
    elif task == "embedding":
        wrapper, outputs = _EmbeddingWrapper(AutoModel.from_pretrained(model_dir).eval()), ["last_hidden_state", "sentence_embedding"]
    else:
        head = AutoModelForTokenClassification if task == "token-classification" else AutoModelForSequenceClassification
        wrapper, outputs = _LogitsWrapper(head.from_pretrained(model_dir).eval()), ["logits"]
    enc = tok(TEXTS[:2], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    per_token = ("last_hidden_state", "start_logits", "end_logits") + \
        (("logits",) if task == "token-classification" else ())
    axes.update({o: ({0: "batch", 1: "sequence"} if o in per_token else {0: "batch"}) for o in outputs})
    torch.onnx.export(wrapper, tuple(enc[n] for n in names), str(out), input_names=names, output_names=outputs,
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return out


def run_onnx(path: Path, tokenizer, texts: list[str], output: str) -> np.ndarray:
    """One output of an ONNX model on ``texts`` (CPU)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    enc = tokenizer(texts, padding=True, return_tensors="np")
    feed = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    return sess.run([output], feed)[0]


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))
