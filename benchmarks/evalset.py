"""The eval set: rows of text (optional second segments, optional gold labels/scores), and its tokenised view.

Token classification rows are words joined by single spaces, with one gold tag name per word as the row's
label and the model's tag names (id2label in id order) as ``label_names``.

Question answering rows are questions (texts) on contexts (pairs) with the gold answer texts per question as
labels (empty: unanswerable); ``examples`` (``compress.tasks.qa.QAExample``, from ``QAData``) carries their ids
and answers, ``doc_stride`` / ``max_answer_length`` how windows are cut and answers read back.

One concept for every measurement: the harness scores raw rows with each runner; the quantizer's guard
scores ONNX files on ``EvalSet.batches(...)``, the same rows tokenised once for a model's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from compress.tasks import task_spec

if TYPE_CHECKING:
    import numpy as np

    from compress.tasks.spec import Gold

BATCH = 32
DOC_STRIDE = 128
MAX_ANSWER_LENGTH = 30


@dataclass
class EvalSet:
    """Eval rows: texts, optional pairs, optional gold labels/scores (tag lists, answer lists), the model's label
    names, and for question answering the examples and the window settings."""

    texts: list[str]
    pairs: list[str] | None = None
    labels: list[Any] | None = None
    source: str = ""
    label_names: list[str] | None = None
    examples: list[Any] | None = None  # question answering: QAExample per row (id, question, context, answers)
    doc_stride: int = DOC_STRIDE  # question answering: tokens shared by consecutive windows of a context
    max_answer_length: int = MAX_ANSWER_LENGTH  # question answering: longest answer span, in tokens
    null_threshold: float = 0.0  # question answering: the model's no-answer threshold (run_qa's default: 0)

    @classmethod
    def from_text_data(cls, data: Any) -> "EvalSet":
        """The rows of a split (TextData, TaggedSentences, QAData); attributes it lacks keep their defaults."""
        return cls(list(data.texts), data.pairs, data.labels, data.source, getattr(data, "label_names", None),
                   getattr(data, "examples", None), getattr(data, "doc_stride", DOC_STRIDE),
                   getattr(data, "max_answer_length", MAX_ANSWER_LENGTH), getattr(data, "null_threshold", None) or 0.0)

    def __len__(self) -> int:
        return len(self.texts)

    def call_rows(self, task: str) -> tuple[list[str], list[str] | None]:
        """The texts (and second segments) a model of ``task`` is called with, one call per row: an embedding
        model encodes each sentence of a pair on its own (a pair is two calls, compared by cosine), every other
        task reads the row as it stands (a cross-encoder, a question on its context)."""
        if self.pairs is not None and task and task_spec(task).outputs == "pooled":
            return self.texts + self.pairs, None
        return self.texts, self.pairs

    def head(self, rows: int) -> "EvalSet":
        """The first ``rows`` rows."""
        return EvalSet(self.texts[:rows], None if self.pairs is None else self.pairs[:rows],
                       None if self.labels is None else self.labels[:rows], self.source, self.label_names,
                       None if self.examples is None else self.examples[:rows], self.doc_stride,
                       self.max_answer_length, self.null_threshold)

    def kind(self, task: str) -> str:
        """labels (task metric), tags (entity F1), spans (SQuAD F1), sts (embedding pairs with scores), or fidelity
        (compare to teacher)."""
        gold = task_spec(task).gold
        if self.labels is not None and gold is not None and (gold != "sts" or self.pairs is not None):
            return gold
        return "fidelity"

    def gold(self, task: str) -> "Gold":
        """What the rows know for ``task``'s metric (``compress.tasks.scoring``): labels, whether they are pairs,
        gold tags with each row's word count, or the QA examples."""
        from compress.tasks.spec import Gold

        kind = self.kind(task)
        return Gold(labels=self.labels, pairs=self.pairs is not None,
                    tags=[[str(t) for t in row] for row in self.labels] if kind == "tags" else None,
                    word_counts=[len(w) for w in self.words()] if kind == "tags" else None,
                    label_names=self.label_names, examples=self.qa_examples() if kind == "spans" else None)

    def batches(self, tokenizer: Any, task: str, names: Sequence[str], max_length: int,
                batch_size: int = BATCH) -> "EvalBatches":
        """The rows tokenised for a model with inputs ``names``, in batches of ``batch_size``.

        Embedding pairs are two towers (each side encoded alone); other tasks feed a pair as one sequence;
        token classification encodes each row's words (see :meth:`tag_batches`), question answering each
        question's context windows (see :meth:`span_batches`).
        """
        import numpy as np

        from benchmarks.feeds import tokenize_feeds

        outputs = task_spec(task).outputs
        if outputs == "words":
            return self.tag_batches(tokenizer, names, max_length, batch_size)
        if outputs == "answers":
            return self.span_batches(tokenizer, names, max_length, batch_size)
        two_towers = outputs == "pooled" and self.pairs is not None
        batches_a: list[dict[str, np.ndarray]] = []
        batches_b: list[dict[str, np.ndarray]] | None = [] if two_towers else None
        for s in range(0, len(self), batch_size):
            texts = self.texts[s:s + batch_size]
            pairs = None if self.pairs is None else self.pairs[s:s + batch_size]
            if batches_b is not None:
                batches_a.append(tokenize_feeds(tokenizer, texts, None, max_length, names))
                batches_b.append(tokenize_feeds(tokenizer, pairs, None, max_length, names))
            else:
                batches_a.append(tokenize_feeds(tokenizer, texts, pairs, max_length, names))
        labels = None if self.labels is None else np.asarray(self.labels, dtype=np.float64)
        kind = "sts" if self.kind(task) == "sts" else task
        return EvalBatches(task, kind, batches_a, batches_b, labels, len(self), self.source)

    def words(self) -> list[list[str]]:
        """Each row's words; with gold tags, checked to hold one tag per word."""
        from benchmarks.tags import split_words
        from compress.core.errors import DataError

        words = [split_words(t) for t in self.texts]
        for i, (w, tags) in enumerate(zip(words, self.labels or [])):
            if len(w) != len(tags):
                raise DataError(f"eval row {i} of '{self.source}': {len(w)} words but {len(tags)} tags")
        return words

    def tag_batches(self, tokenizer: Any, names: Sequence[str], max_length: int,
                    batch_size: int = BATCH) -> "EvalBatches":
        """Token classification: words encoded with ``is_split_into_words``, each word's first sub-token kept."""
        from benchmarks.feeds import tokenize_words

        words = self.words()
        batches: list[dict[str, np.ndarray]] = []
        positions: list[list[int]] = []
        for s in range(0, len(self), batch_size):
            feeds, pos = tokenize_words(tokenizer, words[s:s + batch_size], max_length, names)
            batches.append(feeds)
            positions.extend(pos)
        tags = None if self.labels is None else [list(map(str, t)) for t in self.labels]
        return EvalBatches("token-classification", "token-classification", batches, None, None, len(self),
                           self.source, positions=positions, tags=tags, label_names=self.label_names)

    def qa_examples(self) -> list[Any]:
        """The questions as QAExamples: ``examples`` when given, else built from the rows (ids '0', '1', ...)."""
        from benchmarks.spans import rows_as_examples
        from compress.core.errors import DataError

        examples = self.examples if self.examples is not None else \
            rows_as_examples(self.texts, self.pairs, self.labels, self.source)
        if len(examples) != len(self):
            raise DataError(f"eval set '{self.source}': {len(examples)} QA examples for {len(self)} rows")
        if len({e.id for e in examples}) != len(examples):
            raise DataError(f"eval set '{self.source}': question ids are not unique")
        return list(examples)

    def span_batches(self, tokenizer: Any, names: Sequence[str], max_length: int,
                     batch_size: int = BATCH) -> "EvalBatches":
        """Question answering: every question's context windows (``doc_stride``), ``batch_size`` windows a batch."""
        from benchmarks.feeds import tokenize_windows

        examples = self.qa_examples()
        feeds, windows = tokenize_windows(tokenizer, examples, max_length, self.doc_stride, names)
        n = len(windows["example_index"])
        batches = [{k: v[s:s + batch_size] for k, v in feeds.items()} for s in range(0, n, batch_size)]
        answers = None if self.labels is None else [[str(a) for a in row] for row in self.labels]
        return EvalBatches("question-answering", "question-answering", batches, None, None, len(self), self.source,
                           examples=examples, windows=windows, answers=answers,
                           max_answer_length=self.max_answer_length, null_threshold=self.null_threshold)


@dataclass
class EvalBatches:
    """An EvalSet tokenised for one model's inputs: batches of feeds (two towers for embedding pairs), labels."""

    task: str
    kind: str  # sts | embedding | classification | regression | mlm | token-classification | question-answering
    batches_a: list[dict[str, "np.ndarray"]]
    batches_b: list[dict[str, "np.ndarray"]] | None
    labels: "np.ndarray | None"
    rows: int
    source: str = ""
    reference: dict[str, Any] = field(default_factory=dict)  # a reference model's outputs and metric
    positions: list[list[int]] | None = None  # token classification: each word's first sub-token (-1: truncated)
    tags: list[list[str]] | None = None  # token classification: gold tags per word
    label_names: list[str] | None = None  # token classification: the model's id2label in id order
    examples: list[Any] | None = None  # question answering: the questions (QAExample), one per row
    windows: dict[str, list] | None = None  # question answering: each window's example_index and offset_mapping
    answers: list[list[str]] | None = None  # question answering: gold answer texts per question (None: no gold)
    max_answer_length: int = MAX_ANSWER_LENGTH  # question answering: longest answer span read back, in tokens
    null_threshold: float = 0.0  # question answering: the model's no-answer threshold
    pooling: Any = None  # embedding: the teacher's interface, pooling token vectors of files without sentence vectors

    def head(self, rows: int) -> "EvalBatches":
        """The first whole batches covering ``rows`` rows (question answering: the first ``rows`` questions and
        exactly their windows), without the reference."""
        if self.windows is not None:
            return self._head_questions(rows)
        size = self.batches_a[0]["input_ids"].shape[0] if self.batches_a else BATCH
        nb = max(1, -(-rows // size))
        batches_a = self.batches_a[:nb]
        n = sum(b["input_ids"].shape[0] for b in batches_a)
        return EvalBatches(self.task, self.kind, batches_a, None if self.batches_b is None else self.batches_b[:nb],
                           None if self.labels is None else self.labels[:n], n, self.source,
                           positions=None if self.positions is None else self.positions[:n],
                           tags=None if self.tags is None else self.tags[:n], label_names=self.label_names,
                           pooling=self.pooling)

    def _head_questions(self, rows: int) -> "EvalBatches":
        """Question answering: the first ``rows`` questions with their windows (the last batch cut to them)."""
        rows = max(1, min(rows, self.rows))
        n = sum(1 for i in self.windows["example_index"] if i < rows)  # windows run in question order
        batches, left = [], n
        for b in self.batches_a:
            if left <= 0:
                break
            batches.append({k: v[:left] for k, v in b.items()})
            left -= b["input_ids"].shape[0]
        windows = {k: v[:n] for k, v in self.windows.items()}
        return EvalBatches(self.task, self.kind, batches, None, None, rows, self.source,
                           examples=self.examples[:rows], windows=windows,
                           answers=None if self.answers is None else self.answers[:rows],
                           max_answer_length=self.max_answer_length, null_threshold=self.null_threshold)
