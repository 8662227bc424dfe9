"""Extractive question answering data: the SQuAD JSON layout (v1.1 and v2.0), features with a document stride,
and start/end logits back to answer text — transformers' ``run_qa`` recipe, not a variant of it.

The pipeline's ``task: question-answering`` reads its splits here (:func:`load_qa_splits`).
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import DataError

if TYPE_CHECKING:
    from compress.tasks.spec import Gold, Score, TaskSpec
    import numpy as np
    from transformers import PreTrainedTokenizerBase


@dataclass
class QAExample:
    """One question on one context; ``answers`` empty for an unanswerable (SQuAD 2.0) question."""

    id: str
    question: str
    context: str
    answers: list[dict[str, Any]] = field(default_factory=list)  # {"text", "answer_start"}

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class QAData:
    """Questions with their contexts and gold answers: the split type of ``task: question-answering``."""

    examples: list[QAExample]
    source: str = ""
    doc_stride: int = 128  # windowing of long contexts (data.doc_stride), kept with the rows every scorer reads
    max_answer_length: int = 30
    null_threshold: float | None = None  # the scored model's no-answer threshold, set by a stage that knows the model
    label_names = None

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def texts(self) -> list[str]:
        return [e.question for e in self.examples]

    @property
    def pairs(self) -> list[str]:
        return [e.context for e in self.examples]

    @property
    def labels(self) -> list[list[str]]:
        """Gold answer texts per question (empty: unanswerable)."""
        return [[a["text"] for a in e.answers] for e in self.examples]

    def subset(self, idx: list[int]) -> "QAData":
        return QAData([self.examples[i] for i in idx], self.source, self.doc_stride, self.max_answer_length)

    def head(self, n: int | None) -> "QAData":
        return self if n is None or n >= len(self) else self.subset(list(range(n)))

    def to_columns(self) -> dict[str, list[Any]]:
        """Questions as columns (id, question, context, answers), for the run's data artifact."""
        return {"id": [e.id for e in self.examples], "question": [e.question for e in self.examples],
                "context": [e.context for e in self.examples], "answers": [e.answers for e in self.examples]}

    def attrs(self) -> dict[str, Any]:
        """What the columns do not hold: the source and its windowing settings."""
        return {"source": self.source, "doc_stride": self.doc_stride, "max_answer_length": self.max_answer_length}

    @classmethod
    def from_columns(cls, cols: dict[str, list[Any]], attrs: dict[str, Any]) -> "QAData":
        """Questions back from :meth:`to_columns`."""
        examples = [QAExample(*row) for row in zip(cols["id"], cols["question"], cols["context"], cols["answers"])]
        return cls(examples, attrs.get("source", ""), attrs.get("doc_stride", 128), attrs.get("max_answer_length", 30))


def _read_hub_squad(spec: str) -> list[QAExample]:
    """``hub:squad`` / ``hub:squad_v2[@split]``: id, question, context, answers{text, answer_start}."""
    from compress.data.files import read_hub

    cols = read_hub(spec)
    for field in ("id", "question", "context", "answers"):
        if field not in cols.data:
            raise DataError(f"hub dataset '{spec}': field '{field}' not found; fields are {cols.names}")
    out = []
    for qid, q, ctx, ans in zip(cols.data["id"], cols.data["question"], cols.data["context"], cols.data["answers"]):
        answers = [{"text": t, "answer_start": int(a)} for t, a in zip(ans["text"], ans["answer_start"])]
        out.append(QAExample(str(qid), q.strip(), ctx, answers))
    return out


def read_qa(source: str, doc_stride: int = 128, max_answer_length: int = 30) -> QAData:
    """A QA source: a SQuAD JSON file (v1.1 / v2.0) or ``hub:squad`` / ``hub:squad_v2``; inside a running
    pipeline, read once (:func:`compress.data.files.read_once`)."""
    from compress.data.files import Columns, read_once

    def read() -> Columns:
        got = _read_hub_squad(source) if source.startswith("hub:") else read_squad(source)
        return Columns({"id": [e.id for e in got], "question": [e.question for e in got],
                        "context": [e.context for e in got],
                        "answers": [[{"text": a["text"], "answer_start": a["answer_start"]} for a in e.answers]
                                    for e in got]}, {})

    cols = read_once(source, "squad", read).data
    examples = [QAExample(*row) for row in zip(cols["id"], cols["question"], cols["context"], cols["answers"])]
    return QAData(examples, source, doc_stride, max_answer_length)


def load_qa_splits(data_cfg: Any, seed: int, task: str = "question-answering",
                   **_class_checks: Any) -> Any:
    """Train/eval/test questions per the data config; without ``data.eval`` the eval questions are split off train
    (the run's data artifact holds their ids). Sentence-label checks do not apply to answer spans."""
    from compress.data.split import capped_splits, carve_splits

    windows = (data_cfg.doc_stride, data_cfg.max_answer_length)
    splits = carve_splits(data_cfg, seed, read_qa(data_cfg.train, *windows),
                          lambda source: read_qa(source, *windows))
    if not any(e.answerable for e in splits.train.examples):
        raise DataError(f"training data '{data_cfg.train}' has no answerable question: nothing to learn spans from")
    return capped_splits(splits, data_cfg)


def read_eval(source: str, task: str, *_columns: str | None) -> QAData:
    """One eval file's questions (bench --data: SQuAD JSON, whose fields are fixed, so no column applies)."""
    return read_qa(source)


def feature_dataset(features: dict[str, list]) -> Any:
    """Model inputs (and start/end positions) of the windows as a ``datasets.Dataset`` (no offsets or example ids)."""
    import datasets

    keep = [k for k in features if k not in ("offset_mapping", "example_index")]
    return datasets.Dataset.from_dict({k: features[k] for k in keep})


def answer_texts(data: QAData, features: dict[str, list], start_logits: "np.ndarray", end_logits: "np.ndarray",
                 max_answer_length: int = 30, null_threshold: float = 0.0) -> dict[str, str]:
    """Question id -> predicted answer text ('' = no answer), by run_qa's post-processing (its
    ``null_score_diff_threshold``: the model's tuned no-answer threshold)."""
    best = predictions(data.examples, features, start_logits, end_logits, max_answer_length=max_answer_length,
                       version_2=True, null_threshold=null_threshold)
    return {qid: p["text"] for qid, p in best.items()}


def window_logits(model: Any, tokenizer: "PreTrainedTokenizerBase", data: QAData, max_length: int,
                  batch_size: int = 32) -> tuple[dict[str, list], "np.ndarray", "np.ndarray"]:
    """A PyTorch QA model's start/end logits on every window of ``data`` (its ``doc_stride``), with the windows."""
    import numpy as np
    import torch

    from compress.model.loading import model_input_names

    feats = eval_features(tokenizer, data.examples, max_length, data.doc_stride)
    accepted = model_input_names(model)
    device = next(model.parameters()).device
    starts, ends = [], []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(feats["input_ids"]), batch_size):
            batch = {k: torch.tensor(feats[k][i:i + batch_size], device=device) for k in feats
                     if k in accepted and k not in ("offset_mapping", "example_index")}
            out = model(**batch)
            starts.append(out.start_logits.float().cpu().numpy())
            ends.append(out.end_logits.float().cpu().numpy())
    return feats, np.concatenate(starts), np.concatenate(ends)


def answer_quality(model: Any, tokenizer: "PreTrainedTokenizerBase", data: QAData, max_length: int,
                   batch_size: int = 32, null_threshold: float | None = None) -> dict[str, float]:
    """SQuAD EM/F1 (official v2.0 logic via benchmarks.metrics.squad_scores) of a PyTorch QA model on ``data``,
    windowed with the data's ``doc_stride``, at the model's no-answer threshold (None: 0, run_qa's default)."""
    from benchmarks.metrics import squad_scores

    feats, starts, ends = window_logits(model, tokenizer, data, max_length, batch_size)
    return squad_scores(data.examples, answer_texts(data, feats, starts, ends, data.max_answer_length,
                                                    null_threshold or 0.0))


def _best_threshold(data: QAData, feats: dict[str, list], starts: "np.ndarray", ends: "np.ndarray") -> dict[str, float]:
    """The F1-maximising no-answer threshold for these windows' logits (official best_f1_thresh), and that F1."""
    from benchmarks.metrics import best_null_threshold

    spans = predictions(data.examples, feats, starts, ends, max_answer_length=data.max_answer_length, version_2=False)
    return best_null_threshold(data.examples, {k: v["text"] for k, v in spans.items()},
                               {k: v["null_margin"] for k, v in spans.items()})


def tuned_null_threshold(model: Any, tokenizer: "PreTrainedTokenizerBase", data: QAData, max_length: int,
                         batch_size: int = 32) -> dict[str, float]:
    """The no-answer threshold that maximises SQuAD F1 on ``data`` (the dev split), and that F1."""
    return _best_threshold(data, *window_logits(model, tokenizer, data, max_length, batch_size))


def tuned_answer_quality(model: Any, tokenizer: "PreTrainedTokenizerBase", data: QAData, max_length: int,
                         batch_size: int = 32) -> dict[str, Any]:
    """One pass over ``data`` (dev): the tuned no-answer threshold, and SQuAD scores at 0 and at that threshold."""
    from benchmarks.metrics import squad_scores

    feats, starts, ends = window_logits(model, tokenizer, data, max_length, batch_size)
    threshold = _best_threshold(data, feats, starts, ends)["threshold"]
    at = {t: squad_scores(data.examples, answer_texts(data, feats, starts, ends, data.max_answer_length, t))
          for t in (0.0, threshold)}
    return {"threshold": threshold, "untuned": at[0.0], "tuned": at[threshold]}


def read_squad(path: str | Path) -> list[QAExample]:
    """``data[].paragraphs[].qas[]`` with ``answers[].answer_start`` (and ``is_impossible`` in v2.0).

    An answer whose ``answer_start`` does not point at its text in the context is an error naming the file
    and the question id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SQuAD file '{path}' does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"SQuAD file '{path}' is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"'{path}' is not in the SQuAD layout (a top-level 'data' list of articles)")
    out = []
    for a, article in enumerate(data["data"]):
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise DataError(f"'{path}': article {a} has a paragraph without a 'context' string")
            for qa in paragraph.get("qas", []):
                qid = str(qa.get("id", ""))
                answers = [] if qa.get("is_impossible") else list(qa.get("answers", []))
                for ans in answers:
                    start, text = ans.get("answer_start"), ans.get("text", "")
                    if not isinstance(start, int) or context[start:start + len(text)] != text:
                        raise DataError(f"'{path}' question {qid}: answer_start {start!r} does not point at "
                                        f"{text!r} in its context")
                out.append(QAExample(qid, qa.get("question", "").strip(), context, answers))
    if not out:
        raise DataError(f"SQuAD file '{path}' holds no question")
    return out


def check_stride(tokenizer: "PreTrainedTokenizerBase", examples: list[QAExample], max_length: int,
                 doc_stride: int) -> None:
    """Refuse a stride the windows cannot hold (the tokenizer would panic): the longest question plus the special
    tokens leave ``max_length - question - specials`` context tokens a window, and the stride must be below that."""
    if not examples:
        return
    longest = max(len(tokenizer(e.question, add_special_tokens=False)["input_ids"]) for e in examples)
    room = max_length - longest - tokenizer.num_special_tokens_to_add(pair=True)
    if doc_stride >= room:
        raise DataError(f"data.doc_stride={doc_stride} does not fit: teacher.max_length={max_length} minus the longest "
                        f"question ({longest} tokens) and the special tokens leaves {room} context tokens a window; "
                        f"lower data.doc_stride below {max(room, 1)} or raise teacher.max_length")


def train_features(tokenizer: "PreTrainedTokenizerBase", examples: list[QAExample], max_length: int = 384,
                   doc_stride: int = 128) -> dict[str, list]:
    """Question + context windows (overflowing with ``doc_stride``) with start/end token positions.

    A window that does not contain the answer (or an unanswerable question) points at [CLS] (index 0).
    """
    check_stride(tokenizer, examples, max_length, doc_stride)
    pad_right = tokenizer.padding_side == "right"
    enc = tokenizer([e.question for e in examples], [e.context for e in examples],
                    truncation="only_second" if pad_right else "only_first", max_length=max_length, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = examples[enc["overflow_to_sample_mapping"][i]]
        seq = enc.sequence_ids(i)
        if not ex.answerable:
            starts.append(0)
            ends.append(0)
            continue
        a = ex.answers[0]
        s_char, e_char = a["answer_start"], a["answer_start"] + len(a["text"])
        ctx = [k for k, sid in enumerate(seq) if sid == (1 if pad_right else 0)]
        first, last = ctx[0], ctx[-1]
        if not (offsets[first][0] <= s_char and offsets[last][1] >= e_char):
            starts.append(0)
            ends.append(0)
            continue
        s_tok = first
        while s_tok <= last and offsets[s_tok][0] <= s_char:
            s_tok += 1
        e_tok = last
        while e_tok >= first and offsets[e_tok][1] >= e_char:
            e_tok -= 1
        starts.append(s_tok - 1)
        ends.append(e_tok + 1)
    out = {k: enc[k] for k in enc.keys() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
    out["start_positions"], out["end_positions"] = starts, ends
    return out


def eval_features(tokenizer: "PreTrainedTokenizerBase", examples: list[QAExample], max_length: int = 384,
                  doc_stride: int = 128) -> dict[str, list]:
    """Windows for prediction: inputs, the example each came from, and context-only offsets (others None)."""
    check_stride(tokenizer, examples, max_length, doc_stride)
    pad_right = tokenizer.padding_side == "right"
    enc = tokenizer([e.question for e in examples], [e.context for e in examples],
                    truncation="only_second" if pad_right else "only_first", max_length=max_length, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
    ctx_id = 1 if pad_right else 0
    example_index, offsets = [], []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        example_index.append(enc["overflow_to_sample_mapping"][i])
        offsets.append([o if seq[k] == ctx_id else None for k, o in enumerate(enc["offset_mapping"][i])])
    out = {k: enc[k] for k in enc.keys() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
    out["example_index"], out["offset_mapping"] = example_index, offsets
    return out


def predictions(examples: list[QAExample], features: dict[str, list], start_logits: "np.ndarray",
                end_logits: "np.ndarray", n_best: int = 20, max_answer_length: int = 30,
                version_2: bool = True, null_threshold: float = 0.0) -> dict[str, dict[str, Any]]:
    """Best answer span per example (run_qa's post-processing): text, score; '' when the null score wins (v2)."""
    import numpy as np

    by_example = collections.defaultdict(list)
    for f, ex in enumerate(features["example_index"]):
        by_example[ex].append(f)
    out: dict[str, dict[str, Any]] = {}
    for ex_i, ex in enumerate(examples):
        best, null = None, None
        for f in by_example[ex_i]:
            s, e, offs = start_logits[f], end_logits[f], features["offset_mapping"][f]
            score_null = float(s[0] + e[0])
            null = score_null if null is None or score_null < null else null  # the minimum null score, as run_qa
            for a in np.argsort(s)[-1:-n_best - 1:-1]:
                for b in np.argsort(e)[-1:-n_best - 1:-1]:
                    if a >= len(offs) or b >= len(offs) or offs[a] is None or offs[b] is None:
                        continue
                    if b < a or b - a + 1 > max_answer_length:
                        continue
                    score = float(s[a] + e[b])
                    if best is None or score > best["score"]:
                        best = {"text": ex.context[offs[a][0]:offs[b][1]], "score": score,
                                "start": offs[a][0], "end": offs[b][1]}
        if best is None or (version_2 and null is not None and null - best["score"] > null_threshold):
            out[ex.id] = {"text": "", "score": null if null is not None else 0.0, "start": None, "end": None}
        else:
            out[ex.id] = best
        out[ex.id]["null_margin"] = (null - best["score"]) if best is not None and null is not None else float("inf")
    return out


def score(out: dict, gold: "Gold") -> "Score | None":
    """SQuAD exact match and F1 (0-100) of each question's answer text; None without gold answers."""
    from benchmarks.metrics import squad_scores
    from compress.tasks.spec import Score

    if gold.examples is None or gold.labels is None:
        return None
    if len(out["a"]) != len(gold.examples):
        raise ValueError(f"{len(out['a'])} answers for {len(gold.examples)} questions")
    extra = squad_scores(gold.examples, {e.id: str(a) for e, a in zip(gold.examples, out["a"])})
    return Score("f1", extra["f1"], extra)


def agreement(out: dict, ref: dict) -> float:
    """Share of questions whose answer text equals the reference model's ('' = no answer)."""
    from benchmarks.metrics import answer_agreement

    return answer_agreement(out["a"], ref["a"])


def model_score(model: Any, tokenizer: "PreTrainedTokenizerBase", data: QAData, max_length: int,
                interface: Any = None) -> "Score":
    """SQuAD F1 (with exact match) of a PyTorch model on ``data`` at the no-answer threshold ``interface`` saves."""
    from compress.tasks.spec import Score

    threshold = interface.null_threshold if interface is not None else None
    extra = answer_quality(model, tokenizer, data, max_length, null_threshold=threshold)
    return Score("f1", extra["f1"], extra)


def _spec() -> "TaskSpec":
    from compress.tasks.spec import HeadSpec, OutputSpec, TaskSpec

    return TaskSpec(
        name="question-answering",
        head=HeadSpec("question-answering", "AutoModelForQuestionAnswering", (
            OutputSpec("start_logits", ("batch", "sequence"), "score of each token being the answer start"),
            OutputSpec("end_logits", ("batch", "sequence"), "score of each token being the answer end"),
        ), weights=("qa_outputs",)),
        metric="f1", fidelity="answer_agreement", score=score, agreement=agreement,
        optimum_task="question-answering", pipeline_tag="question-answering", token_level=True, full_scale=100.0,
        has_gold=lambda gold: gold.examples is not None and gold.labels is not None, outputs="answers", gold="spans",
        model_score=model_score, rows="compress.tasks.qa:QAData", loader="compress.tasks.qa:load_qa_splits", reader="compress.tasks.qa:read_eval",
    )


SPEC = _spec()
