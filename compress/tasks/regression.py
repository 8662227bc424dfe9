"""Regression: one score per sentence (pair), scored by Spearman against gold scores or the reference's."""

from __future__ import annotations

from compress.tasks.spec import Gold, HeadSpec, Outputs, OutputSpec, Score, TaskSpec


def _scores(x: "object") -> "object":
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)[:, 0] if x.ndim > 1 else x


def score(out: Outputs, gold: Gold) -> Score | None:
    """Spearman (and Pearson) of the predicted scores against the gold scores; None without labels."""
    from benchmarks import metrics as M

    if gold.labels is None:
        return None
    pred = _scores(out["a"])
    extra = {"spearman": M.spearman(pred, gold.labels), "pearson": M.pearson(pred, gold.labels)}
    return Score("spearman", extra["spearman"], extra)


def agreement(out: Outputs, ref: Outputs) -> float:
    """Spearman of the predicted scores against the reference model's."""
    from benchmarks import metrics as M

    return M.spearman(_scores(out["a"]), _scores(ref["a"]))


SPEC = TaskSpec(
    name="regression",
    head=HeadSpec("regression", "AutoModelForSequenceClassification", (
        OutputSpec("logits", ("batch", "1"), "the predicted score itself (no activation)"),
    ), weights=("classifier", "score", "pre_classifier")),
    metric="spearman", fidelity="fidelity_spearman", score=score, agreement=agreement,
    optimum_task="text-classification", pipeline_tag="text-classification",
    cached=True, static_calibration=True, scores=True, ort_class="ORTModelForSequenceClassification",
    label_kind="scores",
    recovery_loss=(("cos", 1.0), ("embed_mse", 1.0), ("hard", 1.0)),  # hard: only with labels
)
