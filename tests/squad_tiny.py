"""A tiny SQuAD 2.0-style eval set (answerable and unanswerable questions, contexts longer than one window) and
the PyTorch reference answers of a QA model on it (eval_features + the model + run_qa's post-processing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from compress.tasks.qa import QAExample, eval_features, predictions

MAX_LENGTH, DOC_STRIDE, MAX_ANSWER = 48, 16, 30

CONTEXTS = [
    "The function returns a new list of strings. A module can define classes and variables. This method raises "
    "an exception when the file is missing. The object is created by calling the class.",
    "Arguments are passed by assignment in Python. An iterator returns the next item of the sequence. The default "
    "value is evaluated only once. Each thread has its own local data.",
]


def _answers(context: str, text: str | None) -> list[dict]:
    """SQuAD answers for ``text`` in ``context`` (none for None / '': unanswerable)."""
    return [{"text": text, "answer_start": context.index(text)}] if text else []


def _example(qid: str, question: str, context: int, answer: str | None) -> QAExample:
    return QAExample(qid, question, CONTEXTS[context], _answers(CONTEXTS[context], answer))


EXAMPLES = [
    _example("q0", "What does the function return?", 0, "a new list of strings"),
    _example("q1", "What can a module define?", 0, "classes and variables"),
    _example("q2", "When does this method raise an exception?", 0, "when the file is missing"),
    _example("q3", "What is the name of the thread?", 0, None),
    _example("q4", "How are arguments passed?", 1, "by assignment"),
    _example("q5", "What does an iterator return?", 1, "the next item of the sequence"),
    _example("q6", "What does each thread have?", 1, "its own local data"),
    _example("q7", "Which file is missing?", 1, None),
]


def torch_answers(model_dir: Path, examples: list[QAExample] = EXAMPLES, max_length: int = MAX_LENGTH,
                  doc_stride: int = DOC_STRIDE) -> list[str]:
    """Each question's answer text from the PyTorch QA model, one window at a time."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()
    feats = eval_features(tok, examples, max_length, doc_stride)
    starts, ends = [], []
    for i in range(len(feats["input_ids"])):
        batch = {k: torch.tensor([feats[k][i]]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            out = model(**batch)
        starts.append(out.start_logits[0].numpy())
        ends.append(out.end_logits[0].numpy())
    best = predictions(examples, feats, np.stack(starts), np.stack(ends), max_answer_length=MAX_ANSWER)
    return [best[e.id]["text"] for e in examples]


def gold_half_predicted(model_dir: Path) -> list[QAExample]:
    """The examples with the model's own answer as gold for even questions (the hand-written gold for odd ones):
    gold on which the model scores neither 0 nor 100."""
    predicted = torch_answers(model_dir)
    return [QAExample(e.id, e.question, e.context, _answers(e.context, p) if i % 2 == 0 else e.answers)
            for i, (e, p) in enumerate(zip(EXAMPLES, predicted))]
