"""Sequence classification: one class per sentence (pair), scored by accuracy or argmax agreement."""

from __future__ import annotations

from compress.tasks.spec import Gold, HeadSpec, Outputs, OutputSpec, Score, TaskSpec, row_argmax


def score(out: Outputs, gold: Gold) -> Score | None:
    """Accuracy (and F1) of the argmax class against the gold class ids; None without labels."""
    import numpy as np

    from benchmarks import metrics as M

    if gold.labels is None:
        return None
    pred, labels = row_argmax(out["a"]), np.asarray(gold.labels).astype(int)
    extra = {"accuracy": M.accuracy(pred, labels), "f1": M.f1(pred, labels)}
    return Score("accuracy", extra["accuracy"], extra)


def agreement(out: Outputs, ref: Outputs) -> float:
    """Share of rows whose argmax class equals the reference model's."""
    from benchmarks import metrics as M

    return M.accuracy(row_argmax(out["a"]), row_argmax(ref["a"]))


SPEC = TaskSpec(
    name="classification",
    head=HeadSpec("classification", "AutoModelForSequenceClassification", (
        OutputSpec("logits", ("batch", "num_labels"), "unnormalised class scores; softmax gives probabilities, "
                   "argmax indexes labels.json"),
    ), weights=("classifier", "score", "pre_classifier")),
    metric="accuracy", fidelity="top1_agreement", score=score, agreement=agreement,
    optimum_task="text-classification", pipeline_tag="text-classification",
    cached=True, static_calibration=True, class_names=True, ort_class="ORTModelForSequenceClassification",
    unlabeled_text=True, label_kind="classes",
)
