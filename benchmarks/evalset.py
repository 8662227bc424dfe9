"""The eval set: rows of text (optional second segments, optional gold labels/scores), and its tokenised view.

Token classification rows are words joined by single spaces, with one gold tag name per word as the row's
label and the model's tag names (id2label in id order) as ``label_names``.

One concept for every measurement: the harness scores raw rows with each runner; the quantizer's guard
scores ONNX files on ``EvalSet.batches(...)``, the same rows tokenised once for a model's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np

BATCH = 32


@dataclass
class EvalSet:
    """Eval rows: texts, optional pairs, optional gold labels/scores (tag lists), the model's label names."""

    texts: list[str]
    pairs: list[str] | None = None
    labels: list[Any] | None = None
    source: str = ""
    label_names: list[str] | None = None

    @classmethod
    def from_text_data(cls, data: Any) -> "EvalSet":
        return cls(list(data.texts), data.pairs, data.labels, data.source, getattr(data, "label_names", None))

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, rows: int) -> "EvalSet":
        """The first ``rows`` rows."""
        return EvalSet(self.texts[:rows], None if self.pairs is None else self.pairs[:rows],
                       None if self.labels is None else self.labels[:rows], self.source, self.label_names)

    def kind(self, task: str) -> str:
        """labels (task metric), tags (entity F1), sts (embedding pairs with scores), or fidelity (compare to teacher)."""
        if self.labels is not None and task in ("classification", "regression"):
            return "labels"
        if self.labels is not None and task == "token-classification":
            return "tags"
        if task == "embedding" and self.pairs is not None and self.labels is not None:
            return "sts"
        return "fidelity"

    def batches(self, tokenizer: Any, task: str, names: Sequence[str], max_length: int,
                batch_size: int = BATCH) -> "EvalBatches":
        """The rows tokenised for a model with inputs ``names``, in batches of ``batch_size``.

        Embedding pairs are two towers (each side encoded alone); other tasks feed a pair as one sequence;
        token classification encodes each row's words (see :meth:`tag_batches`).
        """
        import numpy as np

        from benchmarks.feeds import tokenize_feeds

        if task == "token-classification":
            return self.tag_batches(tokenizer, names, max_length, batch_size)
        two_towers = task == "embedding" and self.pairs is not None
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
        kind = ("sts" if self.kind(task) == "sts" else "embedding") if task == "embedding" else task
        return EvalBatches(task, kind, batches_a, batches_b, labels, len(self), self.source)

    def words(self) -> list[list[str]]:
        """Each row's words; with gold tags, checked to hold one tag per word."""
        from benchmarks.tags import split_words
        from compress.errors import DataError

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


@dataclass
class EvalBatches:
    """An EvalSet tokenised for one model's inputs: batches of feeds (two towers for embedding pairs), labels."""

    task: str
    kind: str  # sts | embedding | classification | regression | mlm | token-classification
    batches_a: list[dict[str, "np.ndarray"]]
    batches_b: list[dict[str, "np.ndarray"]] | None
    labels: "np.ndarray | None"
    rows: int
    source: str = ""
    reference: dict[str, Any] = field(default_factory=dict)  # a reference model's outputs and metric
    positions: list[list[int]] | None = None  # token classification: each word's first sub-token (-1: truncated)
    tags: list[list[str]] | None = None  # token classification: gold tags per word
    label_names: list[str] | None = None  # token classification: the model's id2label in id order

    def head(self, rows: int) -> "EvalBatches":
        """The first whole batches covering ``rows`` rows, without the reference."""
        size = self.batches_a[0]["input_ids"].shape[0] if self.batches_a else BATCH
        nb = max(1, -(-rows // size))
        batches_a = self.batches_a[:nb]
        n = sum(b["input_ids"].shape[0] for b in batches_a)
        return EvalBatches(self.task, self.kind, batches_a, None if self.batches_b is None else self.batches_b[:nb],
                           None if self.labels is None else self.labels[:n], n, self.source,
                           positions=None if self.positions is None else self.positions[:n],
                           tags=None if self.tags is None else self.tags[:n], label_names=self.label_names)
