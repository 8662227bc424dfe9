"""One scorer: distillation's evaluation reports the task's own metric and fidelity names, the ones the quantize
guard (tests/quantize) and the bench report (tests/benchmarks) use."""

from __future__ import annotations

import numpy as np
import pytest

from compress.data.rows import TextData, builtin_pydoc_sentences
from compress.distill.evaluate import encode, task_quality
from compress.model.loading import load_model, load_tokenizer
from compress.tasks import TASKS


@pytest.mark.parametrize("task", ["classification", "regression", "mlm"])
def test_distill_fidelity_without_labels_is_the_tasks_fidelity(tiny_model_dir, task):
    path = tiny_model_dir("bert", task)
    model, tok = load_model(str(path), task), load_tokenizer(str(path))
    data = TextData(builtin_pydoc_sentences()[:12])
    reference = encode(model, tok, data.texts, task, 32)
    got = task_quality(model, tok, data, task, 32, reference)
    assert got == {"metric": TASKS[task].fidelity, "value": pytest.approx(1.0)}


def test_mlm_fidelity_compares_top1_tokens_at_unpadded_positions(tiny_model_dir):
    path = tiny_model_dir("bert", "mlm")
    model, tok = load_model(str(path), "mlm"), load_tokenizer(str(path))
    texts = builtin_pydoc_sentences()[:6]
    ids = encode(model, tok, texts, "mlm", 32)
    assert ids.ndim == 1 and ids.size == sum(len(tok(t, truncation=True, max_length=32)["input_ids"]) for t in texts)
    other = ids.copy()
    other[: ids.size // 2] = -1
    got = task_quality(model, tok, TextData(texts), "mlm", 32, other)
    assert got["metric"] == "top1_agreement" and got["value"] == pytest.approx(np.mean(ids == other))


def test_classification_with_labels_scores_accuracy(tiny_model_dir):
    path = tiny_model_dir("bert", "classification")
    model, tok = load_model(str(path), "classification"), load_tokenizer(str(path))
    texts = builtin_pydoc_sentences()[:10]
    pred = encode(model, tok, texts, "classification", 32).argmax(-1)
    got = task_quality(model, tok, TextData(texts, None, [int(p) for p in pred]), "classification", 32)
    assert got == {"metric": "accuracy", "value": 1.0}
