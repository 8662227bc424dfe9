"""Sentence embeddings: the pooled (and normalised) vector of a sentence, scored on STS pairs or by cosine."""

from __future__ import annotations

from compress.tasks.spec import Gold, HeadSpec, Outputs, OutputSpec, Score, TaskSpec


def score(out: Outputs, gold: Gold) -> Score | None:
    """STS: Spearman (and Pearson) of cos(sentence, pair) against the gold scores; None without scored pairs."""
    from benchmarks import metrics as M

    if gold.labels is None or not gold.pairs or "b" not in out:
        return None
    extra = M.sts_scores(out["a"], out["b"], gold.labels)
    return Score("spearman", extra["spearman"], extra)


def agreement(out: Outputs, ref: Outputs) -> float:
    """Mean cosine of the sentence vectors (both sides of pairs) to the reference model's."""
    import numpy as np

    from benchmarks import metrics as M

    cos = [M.cosine_rows(out[k], ref[k]) for k in ("a", "b") if k in out and k in ref]
    return float(np.mean(np.concatenate(cos)))


def agreement_extra(out: Outputs, ref: Outputs) -> dict[str, float]:
    """Spearman of the two models' pairwise-similarity matrices: whether the neighbours of each sentence stay."""
    from benchmarks import metrics as M

    return {"similarity_spearman": M.similarity_matrix_spearman(out["a"], ref["a"])}


SPEC = TaskSpec(
    name="embedding",
    head=HeadSpec("embedding", "AutoModel", (
        OutputSpec("last_hidden_state", ("batch", "sequence", "hidden"), "contextual vector of every token"),
        OutputSpec("sentence_embedding", ("batch", "hidden"),
                   "the sentence vector: last_hidden_state pooled (and L2-normalised) as the manifest's 'pooling' says"),
    )),
    metric="spearman", fidelity="fidelity_cosine", score=score, agreement=agreement,
    optimum_task="feature-extraction", pipeline_tag="sentence-similarity",
    cached=True, static_calibration=True, train_labels=False,
    has_gold=lambda gold: gold.labels is not None and gold.pairs, agreement_extra=agreement_extra,
    outputs="pooled", gold="sts", ort_class="ORTModelForFeatureExtraction",
    unlabeled_text=True, recovery_loss=(("embed_mse", 1.0), ("cos", 1.0)), label_kind="scores",  # STS similarity scores
)
