"""Quality metrics — the one definition of each, used by the harness, the quantizer's guard, pruning and
distillation checks and fine-tuning: accuracy/F1 (scikit-learn), Spearman/Pearson (SciPy), entity-level
precision/recall/F1 (seqeval), SQuAD EM/F1, cosine, teacher fidelity, top-1, per-word and answer agreement,
and retention.

Correlations of a constant series (undefined; SciPy returns NaN) are 0.0 here, so a collapsed model scores
as uncorrelated instead of poisoning medians and comparisons with NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Fraction of exact matches."""
    import numpy as np
    from sklearn.metrics import accuracy_score

    p, g = np.asarray(pred).ravel(), np.asarray(gold).ravel()
    if len(p) != len(g) or len(p) == 0:
        raise ValueError(f"accuracy needs equal, non-empty lists (got {len(p)} and {len(g)})")
    return float(accuracy_score(g, p))


def f1(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Binary F1 of class 1 for two classes, macro-averaged F1 over gold∪pred classes otherwise."""
    import numpy as np
    from sklearn.metrics import f1_score

    p, g = np.asarray(pred).ravel(), np.asarray(gold).ravel()
    classes = sorted(set(g.tolist()) | set(p.tolist()))
    positives = [1] if set(classes) <= {0, 1} else classes
    return float(f1_score(g, p, labels=positives, average="macro", zero_division=0))


def _finite(value: float) -> float:
    return float(value) if value == value else 0.0  # NaN (constant input) -> 0


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient (0.0 when either side is constant)."""
    import numpy as np
    from scipy.stats import pearsonr

    a, b = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return _finite(pearsonr(a, b).statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation, ties at their average rank (0.0 when either side is constant)."""
    import numpy as np
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return _finite(spearmanr(a, b).statistic)


def cosine_rows(a: "np.ndarray", b: "np.ndarray") -> "np.ndarray":
    """Cosine similarity of row i of ``a`` with row i of ``b`` (along the last axis)."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    num = (a * b).sum(-1)
    return num / np.clip(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12, None)


def _unit(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def similarity_matrix_spearman(a: "np.ndarray", b: "np.ndarray") -> float:
    """Spearman between the upper triangles of the cosine-similarity matrices of two embedding sets."""
    import numpy as np

    ua, ub = _unit(a), _unit(b)
    iu = np.triu_indices(len(ua), k=1)
    return spearman((ua @ ua.T)[iu], (ub @ ub.T)[iu])


def sts_scores(emb1: "np.ndarray", emb2: "np.ndarray", gold: Sequence[float]) -> dict[str, float]:
    """STS quality: Spearman and Pearson of cos(sentence1, sentence2) against the gold score."""
    sims = cosine_rows(emb1, emb2)
    return {"spearman": spearman(sims, gold), "pearson": pearson(sims, gold)}


def mean_cosine(variant: "np.ndarray", reference: "np.ndarray") -> float:
    """Mean row-wise cosine of two embedding sets (1.0: the same directions)."""
    return float(cosine_rows(variant, reference).mean())


def fidelity(variant: "np.ndarray", teacher: "np.ndarray") -> dict[str, float]:
    """Agreement with the teacher without labels: mean cosine of embeddings, Spearman of pairwise similarities."""
    return {"fidelity_cosine": mean_cosine(variant, teacher),
            "fidelity_spearman": similarity_matrix_spearman(variant, teacher)}


def top1_agreement(variant_logits: "np.ndarray", teacher_logits: "np.ndarray") -> float:
    """Fraction of rows where the variant's argmax class equals the teacher's."""
    import numpy as np

    return accuracy(np.asarray(variant_logits).argmax(-1), np.asarray(teacher_logits).argmax(-1))


def answer_agreement(variant_answers: Sequence[str], reference_answers: Sequence[str]) -> float:
    """Fraction of questions whose predicted answer text equals the reference's ('' = no answer)."""
    return accuracy([str(a) for a in variant_answers], [str(a) for a in reference_answers])


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 of tag sequences (seqeval's default mode, as transformers' run_ner)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("entity_scores needs one predicted tag per gold tag in every row")
    return {"precision": float(precision_score(gold, pred, zero_division=0)),
            "recall": float(recall_score(gold, pred, zero_division=0)),
            "f1": float(f1_score(gold, pred, zero_division=0))}


def squad_scores(examples: Sequence[Any], predictions: dict[str, str]) -> dict[str, float]:
    """SQuAD exact match and F1 (0-100, as the official v2.0 evaluation; HasAns_/NoAns_ splits when both kinds occur)
    from transformers' port of that script; ``examples`` need ``id`` and ``answers`` ([{"text": ...}], empty when
    unanswerable), ``predictions`` map id -> answer text ('' = no answer)."""
    from types import SimpleNamespace

    from transformers.data.metrics.squad_metrics import squad_evaluate

    if not examples:
        raise ValueError("squad_scores needs at least one example")
    wrapped = [SimpleNamespace(qas_id=e.id, answers=list(e.answers)) for e in examples]
    missing = [e.qas_id for e in wrapped if e.qas_id not in predictions]
    if missing:
        raise ValueError(f"squad_scores: no prediction for {len(missing)} questions (e.g. {missing[0]})")
    out = squad_evaluate(wrapped, {e.qas_id: predictions[e.qas_id] for e in wrapped})
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not k.startswith("best")}


def best_null_threshold(examples: Sequence[Any], spans: dict[str, str], null_margins: dict[str, float]) -> dict[str, float]:
    """SQuAD 2.0's tuned no-answer threshold: answer a question with its best span unless its null margin (null
    score - best span score) exceeds the threshold. The official evaluation's search (transformers' port,
    ``best_f1_thresh``) over ``spans`` (id -> best non-null span text) and their margins; returns the threshold
    and the F1 it gives on these questions."""
    from types import SimpleNamespace

    from transformers.data.metrics.squad_metrics import squad_evaluate

    if not examples:
        raise ValueError("best_null_threshold needs at least one example")
    wrapped = [SimpleNamespace(qas_id=e.id, answers=list(e.answers)) for e in examples]
    out = squad_evaluate(wrapped, {e.qas_id: spans[e.qas_id] for e in wrapped},
                         no_answer_probs={e.qas_id: float(null_margins[e.qas_id]) for e in wrapped})
    return {"threshold": float(out["best_f1_thresh"]), "f1": float(out["best_f1"])}


def word_agreement(variant_ids: Sequence["np.ndarray"], reference_ids: Sequence["np.ndarray"]) -> float:
    """Fraction of words whose argmax class equals the reference's; words either side lost to truncation (-1) skipped."""
    import numpy as np

    v = np.concatenate([np.asarray(x, dtype=np.int64).ravel() for x in variant_ids])
    r = np.concatenate([np.asarray(x, dtype=np.int64).ravel() for x in reference_ids])
    if v.shape != r.shape:
        raise ValueError(f"word_agreement needs the same words on both sides (got {v.size} and {r.size})")
    kept = (v >= 0) & (r >= 0)
    return accuracy(v[kept], r[kept]) if kept.any() else 0.0


def retention(variant_value: float | None, teacher_value: float | None, min_reference: float = 0.0) -> float | None:
    """variant / teacher on the same rows.

    None when either is missing, or the teacher's value is 0 — or not above ``min_reference`` when one is
    given: below it an untrained reference scores noise, and the caller reports fidelity instead.
    """
    if variant_value is None or teacher_value is None or teacher_value == 0:
        return None
    if min_reference and not teacher_value > min_reference:
        return None
    return float(variant_value) / float(teacher_value)
