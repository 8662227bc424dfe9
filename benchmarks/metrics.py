"""Quality metrics: accuracy/F1, Spearman/Pearson for STS, teacher fidelity, retention."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Fraction of exact matches."""
    import numpy as np

    p, g = np.asarray(pred), np.asarray(gold)
    if len(p) != len(g) or len(p) == 0:
        raise ValueError(f"accuracy needs equal, non-empty lists (got {len(p)} and {len(g)})")
    return float((p == g).mean())


def f1(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Binary F1 of class 1 for two classes, macro-averaged F1 over gold∪pred classes otherwise."""
    import numpy as np

    p, g = np.asarray(pred), np.asarray(gold)
    classes = sorted(set(g.tolist()) | set(p.tolist()))
    positives = [1] if set(classes) <= {0, 1} else classes
    scores = []
    for c in positives:
        tp = float(((p == c) & (g == c)).sum())
        fp = float(((p == c) & (g != c)).sum())
        fn = float(((p != c) & (g == c)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient."""
    import numpy as np

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (ties get their average rank)."""
    from scipy.stats import rankdata

    return pearson(rankdata(x), rankdata(y))


def cosine_rows(a: "np.ndarray", b: "np.ndarray") -> "np.ndarray":
    """Cosine similarity of row i of ``a`` with row i of ``b``."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    num = (a * b).sum(1)
    return num / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)


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


def fidelity(variant: "np.ndarray", teacher: "np.ndarray") -> dict[str, float]:
    """Agreement with the teacher without labels: mean cosine of embeddings, Spearman of pairwise similarities."""
    return {"fidelity_cosine": float(cosine_rows(variant, teacher).mean()),
            "fidelity_spearman": similarity_matrix_spearman(variant, teacher)}


def top1_agreement(variant_logits: "np.ndarray", teacher_logits: "np.ndarray") -> float:
    """Fraction of rows where the variant's argmax class equals the teacher's."""
    import numpy as np

    return accuracy(np.asarray(variant_logits).argmax(-1), np.asarray(teacher_logits).argmax(-1))


def retention(variant_value: float | None, teacher_value: float | None) -> float | None:
    """variant / teacher on the same rows (None when either is missing or the teacher scores 0)."""
    if variant_value is None or teacher_value is None or teacher_value == 0:
        return None
    return float(variant_value) / float(teacher_value)
