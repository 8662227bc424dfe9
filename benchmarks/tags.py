"""Token classification: words to sub-token positions, and token logits back to one tag per word.

The alignment is transformers' ``run_ner`` recipe: a word's first sub-token carries its tag. A word that
truncation cut off has no sub-token (position -1): it is predicted ``O``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from compress.core.errors import EdgepressError

if TYPE_CHECKING:
    import numpy as np

OUTSIDE = "O"
TRUNCATED = -1


def split_words(text: str) -> list[str]:
    """The words of an eval row (CoNLL words joined by single spaces)."""
    return text.split(" ")


def first_subtokens(word_ids: Sequence[int | None], n_words: int) -> list[int]:
    """Token index of each word's first sub-token (``word_ids`` of one encoded row); -1 for truncated words."""
    positions = [TRUNCATED] * n_words
    for token, word in enumerate(word_ids):
        if word is not None and positions[word] == TRUNCATED:
            positions[word] = token
    return positions


def word_argmax(logits: "np.ndarray", positions: Sequence[Sequence[int]]) -> list["np.ndarray"]:
    """Per row, the argmax class of each word's first sub-token in ``logits`` [B, S, C]; -1 for truncated words."""
    import numpy as np

    if logits.ndim != 3 or logits.shape[0] != len(positions):
        raise ValueError(f"token logits must be [batch={len(positions)}, sequence, classes], got {logits.shape}")
    best = logits.argmax(-1)
    rows = []
    for b, pos in enumerate(positions):
        pos = np.asarray(pos, dtype=np.int64)
        rows.append(np.where(pos >= 0, best[b, np.clip(pos, 0, None)], TRUNCATED))
    return rows


def ids_to_tags(ids: Sequence["np.ndarray"], label_names: Sequence[str] | None) -> list[list[str]]:
    """Class ids per word as tag names (``label_names``: the model's id2label in id order); -1 -> ``O``."""
    if not label_names:
        raise EdgepressError("token-classification scoring needs the model's label names (config.json id2label)")
    out = []
    for row in ids:
        if len(row) and int(max(row)) >= len(label_names):
            raise EdgepressError(f"the model predicts class {int(max(row))}, but only {len(label_names)} label names "
                                 "were given; use the model's own id2label")
        out.append([OUTSIDE if i < 0 else label_names[int(i)] for i in row])
    return out


def predict_tags(logits: "np.ndarray", positions: Sequence[Sequence[int]], label_names: Sequence[str]) -> list[list[str]]:
    """Token logits [B, S, C] to one tag per word (first sub-token's argmax; words cut off by truncation -> ``O``)."""
    return ids_to_tags(word_argmax(logits, positions), label_names)


def row_tags(word_ids: "np.ndarray", lengths: Sequence[int], label_names: Sequence[str] | None) -> list[list[str]]:
    """Per-word classes of all rows concatenated, as tag names split into rows of ``lengths`` words."""
    import numpy as np

    word_ids = np.asarray(word_ids, dtype=np.int64)
    if word_ids.size != sum(lengths):
        raise ValueError(f"{word_ids.size} word predictions for {sum(lengths)} words")
    return ids_to_tags(np.split(word_ids, np.cumsum(lengths)[:-1]) if len(lengths) else [], label_names)
