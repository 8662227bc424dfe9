"""Quick quality checks used while training (the full harness lives in benchmarks/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from compress.models import model_input_names  # noqa: F401  (re-exported: callers import it from here too)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from compress.data import TextData
    from compress.interface import ModelInterface


def encode(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", texts: list[str], task: str,
           max_length: int, pairs: list[str] | None = None, batch_size: int = 64,
           interface: "ModelInterface | None" = None) -> np.ndarray:
    """Sentence embeddings (pooled as ``interface`` says; mean by default) or logits (classification/regression)."""
    import torch

    from compress.interface import ModelInterface, SentencePooler, hidden_size

    pooler = SentencePooler(interface or ModelInterface("embedding"), hidden_size(model.config)) \
        if task in ("embedding", "mlm") else None

    accepted = model_input_names(model)
    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], pairs[i:i + batch_size] if pairs else None, padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items() if k in accepted}
            if task in ("classification", "regression"):
                out.append(model(**enc).logits.float().cpu())
            else:
                res = model(**enc, output_hidden_states=task == "mlm")
                hidden = res.hidden_states[-1] if task == "mlm" else res.last_hidden_state
                out.append(pooler(hidden, enc["attention_mask"]).float().cpu())
    return torch.cat(out).numpy()


def quality_metric(task: str, data: "TextData", has_reference: bool) -> str:
    """The metric :func:`task_quality` reports for ``task`` on ``data``: accuracy, spearman, teacher_cosine or none."""
    if task in ("token-classification", "question-answering"):
        return "f1" if data.labels is not None else "none"
    if task == "classification" and data.labels is not None:
        return "accuracy"
    if task == "regression" and data.labels is not None:
        return "spearman"
    if task == "embedding" and data.pairs is not None and data.labels is not None:
        return "spearman"
    return "teacher_cosine" if has_reference else "none"


def task_quality(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", data: "TextData", task: str,
                 max_length: int, reference: np.ndarray | None = None,
                 interface: "ModelInterface | None" = None) -> dict[str, Any]:
    """Headline metric on ``data``: accuracy, Spearman (STS pairs or regression), or fidelity to ``reference``."""
    from benchmarks import metrics as M

    metric = quality_metric(task, data, reference is not None)
    if metric == "f1" and task == "question-answering":
        from compress.tasks.qa import answer_quality

        threshold = interface.null_threshold if interface is not None else None
        return {"metric": "f1", "value": answer_quality(model, tokenizer, data, max_length,
                                                        null_threshold=threshold)["f1"]}
    if metric == "f1":
        from compress.tasks.ner import entity_quality

        return {"metric": "f1", "value": entity_quality(model, tokenizer, data, max_length)["f1"]}
    if metric == "accuracy":
        logits = encode(model, tokenizer, data.texts, task, max_length, data.pairs, interface=interface)
        return {"metric": "accuracy", "value": M.accuracy(logits.argmax(1), data.labels)}
    if metric == "spearman" and task == "regression":
        pred = encode(model, tokenizer, data.texts, task, max_length, data.pairs, interface=interface)[:, 0]
        return {"metric": "spearman", "value": M.spearman(pred, data.labels)}
    if metric == "spearman":
        a = encode(model, tokenizer, data.texts, task, max_length, interface=interface)
        b = encode(model, tokenizer, data.pairs, task, max_length, interface=interface)
        return {"metric": "spearman", "value": M.sts_scores(a, b, data.labels)["spearman"]}
    if metric == "none":
        return {"metric": "none", "value": float("nan")}
    emb = encode(model, tokenizer, data.texts, task, max_length, interface=interface)
    return {"metric": "teacher_cosine", "value": M.mean_cosine(emb, reference)}
