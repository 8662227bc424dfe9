"""Quick quality checks used while training (the full harness lives in benchmarks/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from compress.model.loading import model_input_names  # noqa: F401  (re-exported: callers import it from here too)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from compress.data.rows import TextData
    from compress.model.interface import ModelInterface
    from compress.tasks.spec import Gold


def encode(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", texts: list[str], task: str,
           max_length: int, pairs: list[str] | None = None, batch_size: int = 64,
           interface: "ModelInterface | None" = None) -> np.ndarray:
    """The task's outputs on rows (``TaskSpec.outputs``): sentence embeddings pooled as ``interface`` says (mean
    by default), logits, or (mlm) the top-1 token id at every unpadded position, batches concatenated."""
    import torch

    from compress.model.interface import ModelInterface, SentencePooler, hidden_size
    from compress.tasks import task_spec

    kind = task_spec(task).outputs
    if kind not in ("pooled", "logits", "tokens"):
        raise ValueError(f"encode gives sentence-level outputs; task '{task}' is scored by its spec's model_score")
    pooler = SentencePooler(interface or ModelInterface("embedding"), hidden_size(model.config)) \
        if kind == "pooled" else None

    accepted = model_input_names(model)
    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], pairs[i:i + batch_size] if pairs else None, padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items() if k in accepted}
            if kind == "logits":
                out.append(model(**enc).logits.float().cpu())
            elif kind == "tokens":
                out.append(model(**enc).logits.argmax(-1)[enc["attention_mask"].bool()].cpu())
            else:
                out.append(pooler(model(**enc).last_hidden_state, enc["attention_mask"]).float().cpu())
    return torch.cat(out).numpy()


def data_gold(task: str, data: "TextData") -> "Gold":
    """What a split knows for ``task``'s metric: its labels, whether rows are pairs, tags or QA examples."""
    from compress.tasks import task_spec
    from compress.tasks.spec import Gold

    token = task_spec(task).token_level
    return Gold(labels=data.labels, pairs=data.pairs is not None,
                tags=data.labels if token else None, examples=getattr(data, "examples", None))


def quality_metric(task: str, data: "TextData", has_reference: bool) -> str:
    """The metric :func:`task_quality` reports for ``task`` on ``data``: the task metric when the rows hold gold,
    else the task's fidelity to ``reference`` (sentence-level tasks), else none."""
    from compress.tasks import task_spec
    from compress.tasks.scoring import metric_name

    return metric_name(task, data_gold(task, data), has_reference and not task_spec(task).token_level)


def task_quality(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", data: "TextData", task: str,
                 max_length: int, reference: np.ndarray | None = None,
                 interface: "ModelInterface | None" = None) -> dict[str, Any]:
    """Headline metric on ``data``: the task metric (``compress.tasks.scoring``, as the quantize guard and the bench
    report score it), or the task's fidelity to ``reference`` (the reference model's :func:`encode` on the texts)."""
    from compress.tasks import task_spec
    from compress.tasks.scoring import fidelity, metric

    spec = task_spec(task)
    name = quality_metric(task, data, reference is not None)
    if name == "none":
        return {"metric": "none", "value": float("nan")}
    if name != spec.fidelity and spec.model_score is not None:
        return {"metric": name, "value": spec.model_score(model, tokenizer, data, max_length, interface).value}
    if name != spec.fidelity:
        pairs_apart = spec.outputs == "pooled"  # sentence vectors: each side of a pair encoded alone
        outs = {"a": encode(model, tokenizer, data.texts, task, max_length, None if pairs_apart else data.pairs,
                            interface=interface)}
        if pairs_apart:
            outs["b"] = encode(model, tokenizer, data.pairs, task, max_length, interface=interface)
        got = metric(task, outs, data_gold(task, data))
        return {"metric": got.metric, "value": got.value}
    emb = encode(model, tokenizer, data.texts, task, max_length, interface=interface)
    return {"metric": name, "value": fidelity(task, {"a": emb}, {"a": reference})[1]}
