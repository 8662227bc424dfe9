"""Question answering: start/end logits of the windows back to one answer text per question, scored with SQuAD.

The windows and the post-processing are ``compress.tasks.qa``'s (transformers' ``run_qa`` recipe, SQuAD 2.0
null answers: '' = no answer); the scores are ``benchmarks.metrics.squad_scores`` (EM/F1, 0-100).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from compress.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from compress.tasks.qa import QAExample

OUTPUT_NAMES = ("start_logits", "end_logits")


def span_logits(outputs: dict[str, "np.ndarray"]) -> tuple["np.ndarray", "np.ndarray"]:
    """(start, end) logits [batch, sequence]: the named outputs, else the first two [batch, sequence] outputs."""
    if all(n in outputs for n in OUTPUT_NAMES):
        return outputs["start_logits"], outputs["end_logits"]
    two_d = [v for v in outputs.values() if v.ndim == 2]
    if len(two_d) < 2:
        raise ValueError(f"no start/end logits [batch, sequence] among {sorted(outputs)}")
    return two_d[0], two_d[1]


def rows_as_examples(texts: Sequence[str], pairs: Sequence[str] | None,
                     labels: Sequence[Sequence[str]] | None, source: str = "") -> list["QAExample"]:
    """Questions (``texts``) on contexts (``pairs``) as examples with ids '0', '1', ...; ``labels``: gold answer
    texts per question (empty: unanswerable)."""
    from compress.tasks.qa import QAExample

    if pairs is None or len(pairs) != len(texts):
        raise DataError(f"question answering rows of '{source}' need one context (pair) per question")
    gold = labels if labels is not None else [[] for _ in texts]
    return [QAExample(str(i), q, c, [{"text": str(a), "answer_start": c.find(str(a))} for a in answers])
            for i, (q, c, answers) in enumerate(zip(texts, pairs, gold))]


def predicted_answers(examples: Sequence["QAExample"], windows: dict[str, list], start_logits: "np.ndarray",
                      end_logits: "np.ndarray", max_answer_length: int = 30, null_threshold: float = 0.0) -> list[str]:
    """Each question's answer text ('' = no answer), in example order, from its windows' logits, at the model's
    no-answer threshold."""
    from compress.tasks.qa import QAData, answer_texts

    texts = answer_texts(QAData(list(examples)), windows, start_logits, end_logits, max_answer_length, null_threshold)
    return [texts[e.id] for e in examples]


def answer_scores(examples: Sequence["QAExample"], answers: Sequence[Any]) -> dict[str, float]:
    """SQuAD exact/F1 (and HasAns_/NoAns_ splits) of the answers, one per example in order, vs the gold ones."""
    from benchmarks.metrics import squad_scores

    if len(answers) != len(examples):
        raise ValueError(f"{len(answers)} answers for {len(examples)} questions")
    return squad_scores(list(examples), {e.id: str(a) for e, a in zip(examples, answers)})
