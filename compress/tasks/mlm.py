"""Masked language modelling: a vocabulary distribution per token, scored by top-1 token agreement."""

from __future__ import annotations

from compress.tasks.spec import Gold, HeadSpec, Outputs, OutputSpec, Score, TaskSpec, row_argmax


def score(out: Outputs, gold: Gold) -> Score | None:
    """No task metric on plain text rows: an mlm model is scored by agreement with its reference."""
    return None


def agreement(out: Outputs, ref: Outputs) -> float:
    """Share of (unpadded) tokens whose top-1 predicted token equals the reference model's."""
    import numpy as np

    return float(np.mean(row_argmax(out["a"]) == row_argmax(ref["a"])))


SPEC = TaskSpec(
    name="mlm",
    head=HeadSpec("mlm", "AutoModelForMaskedLM", (
        OutputSpec("logits", ("batch", "sequence", "vocab"), "score of every vocabulary token at every position; "
                   "argmax at a [MASK] position is the predicted token id"),
    ), weights=("cls.", "lm_head", "vocab_", "generator_lm_head", "predictions")),
    metric=None, fidelity="top1_agreement", score=score, agreement=agreement,
    optimum_task="fill-mask", pipeline_tag="fill-mask",
    static_calibration=True, train_labels=False, outputs="tokens", gold=None, ort_class="ORTModelForMaskedLM",
    example="Paris is the [MASK] of France.", unlabeled_text=True,
    no_head_hint="use a checkpoint with a masked-LM head (e.g. bert-base-uncased), or task: embedding",
)
