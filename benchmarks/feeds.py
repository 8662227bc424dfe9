"""Model inputs: texts tokenised into int64 numpy feeds, and synthetic feeds of a fixed shape.

``tokenize_feeds`` is the one text -> feeds function: the quantizer's eval and calibration batches, its
latency feed, and the harness's quality and realistic-latency batches all go through it. Token classification
scores words: ``tokenize_words`` encodes pre-split words and keeps where each word's first sub-token is.
Question answering scores windows: ``tokenize_windows`` encodes question + context with a document stride.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from compress.core.errors import EdgepressError

if TYPE_CHECKING:
    import numpy as np


def tokenize_feeds(tokenizer: Any, texts: list[str], pairs: list[str] | None = None, max_length: int = 128,
                   names: Sequence[str] | None = None, pad_to: int | None = None) -> dict[str, "np.ndarray"]:
    """Tokenise a batch (with its second segments ``pairs``) into int64 arrays, truncated to ``max_length``.

    Padding is dynamic (to the longest row) unless ``pad_to`` fixes the length. ``token_type_ids`` is zeros
    when the tokenizer gives none. With ``names`` (a model's inputs) only those are returned, in that order,
    and an input the tokenizer cannot provide is an error.
    """
    kw: dict[str, Any] = dict(truncation=True, return_tensors="np")
    if pad_to:
        kw.update(padding="max_length", max_length=pad_to)
    else:
        kw.update(padding=True, max_length=max_length)
    enc = tokenizer(texts, pairs, **kw) if pairs is not None else tokenizer(texts, **kw)
    return _as_feeds(enc, names)


def _as_feeds(enc: Any, names: Sequence[str] | None) -> dict[str, "np.ndarray"]:
    """int64 arrays of an encoding (zero ``token_type_ids`` when absent), only ``names`` when given."""
    import numpy as np

    out = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
    if "token_type_ids" not in out:
        out["token_type_ids"] = np.zeros_like(out["input_ids"])
    if names is None:
        return out
    missing = [n for n in names if n not in out]
    if missing:
        raise EdgepressError(f"the tokenizer gives no '{missing[0]}', which the ONNX model takes as input")
    return {n: out[n] for n in names}


def tokenize_words(tokenizer: Any, words: list[list[str]], max_length: int = 128,
                   names: Sequence[str] | None = None) -> tuple[dict[str, "np.ndarray"], list[list[int]]]:
    """Tokenise pre-split words (``is_split_into_words``, truncated, padded to the longest row) into int64 feeds,
    with each word's first sub-token position per row (-1: cut off by truncation)."""
    from benchmarks.tags import first_subtokens
    from compress.model.loading import words_tokenizer

    enc = words_tokenizer(tokenizer)(words, is_split_into_words=True, truncation=True, max_length=max_length,
                                     padding=True, return_tensors="np")
    if not getattr(enc, "is_fast", False):
        raise EdgepressError("token classification needs a fast tokenizer (tokenizer.json): word positions come "
                             "from its word_ids")
    positions = [first_subtokens(enc.word_ids(i), len(row)) for i, row in enumerate(words)]
    return _as_feeds(enc, names), positions


def tokenize_windows(tokenizer: Any, examples: Sequence[Any], max_length: int = 384, doc_stride: int = 128,
                     names: Sequence[str] | None = None) -> tuple[dict[str, "np.ndarray"], dict[str, list]]:
    """Question answering: every question + context window (``compress.tasks.qa.eval_features``: overflow with
    ``doc_stride``, padded to ``max_length``) as int64 feeds, with each window's ``example_index`` and
    context-only ``offset_mapping`` for the answer post-processing."""
    from compress.tasks.qa import eval_features

    feats = eval_features(tokenizer, list(examples), max_length, doc_stride)
    windows = {k: feats.pop(k) for k in ("example_index", "offset_mapping")}
    return _as_feeds(feats, names), windows


def token_lengths(tokenizer: Any, texts: list[str], max_length: int, pairs: list[str] | None = None) -> list[int]:
    """Token count of each text (with its second segment) after truncation (what realistic mode samples from)."""
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length) if pairs is not None \
        else tokenizer(texts, truncation=True, max_length=max_length)
    return [len(ids) for ids in enc["input_ids"]]


def fixed_feeds(names: Sequence[str], batch: int, seq: int, vocab: int, seed: int = 0) -> dict[str, "np.ndarray"]:
    """Synthetic [batch, seq] inputs with every token attended (the device runner's generator)."""
    from benchmarks.remote_runner import synthetic_feeds
    from benchmarks.runners.base import STANDARD_INPUTS

    return synthetic_feeds(STANDARD_INPUTS, batch, seq, vocab, seed)
