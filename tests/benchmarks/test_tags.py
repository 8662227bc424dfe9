"""Token classification: word positions from a real tokenizer, token logits back to tags per word."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.evalset import EvalSet
from benchmarks.tags import first_subtokens, predict_tags, row_tags, word_argmax
from compress.core.errors import DataError, EdgepressError
from tests.tiny import NER_LABELS, save_tokenizer

NAMES = [NER_LABELS[i] for i in range(len(NER_LABELS))]  # O B-PER I-PER B-LOC I-LOC


def _logits(best: list[list[int]], classes: int = 5) -> np.ndarray:
    """[B, S, C] logits whose argmax at (b, s) is best[b][s]."""
    out = np.zeros((len(best), len(best[0]), classes), dtype=np.float32)
    for b, row in enumerate(best):
        for s, c in enumerate(row):
            out[b, s, c] = 1.0
    return out


def test_first_subtokens_from_word_ids():
    # [CLS] w0 w0 w1 [SEP] [PAD]; w2 was cut off by truncation
    assert first_subtokens([None, 0, 0, 1, None, None], 3) == [1, 3, -1]


def test_predict_tags_reads_first_subtoken_and_truncated_words_are_o():
    #        CLS  w0  w0## w1  w2  SEP
    logits = _logits([[0, 1, 4, 2, 3, 0],
                      [0, 3, 4, 0, 0, 0]])
    positions = [[1, 3, 4], [1, 2, -1, -1]]  # row 2: words 3 and 4 truncated
    assert predict_tags(logits, positions, NAMES) == [["B-PER", "I-PER", "B-LOC"], ["B-LOC", "I-LOC", "O", "O"]]
    ids = word_argmax(logits, positions)
    assert [r.tolist() for r in ids] == [[1, 2, 3], [3, 4, -1, -1]]
    assert row_tags(np.concatenate(ids), [3, 4], NAMES)[1] == ["B-LOC", "I-LOC", "O", "O"]


def test_predict_tags_refuses_missing_or_short_label_names():
    logits = _logits([[0, 4]])
    with pytest.raises(EdgepressError, match="label names"):
        predict_tags(logits, [[1]], None)
    with pytest.raises(EdgepressError, match="class 4"):
        predict_tags(logits, [[1]], ["O", "B-PER"])


def test_eval_batches_align_words_with_a_real_tokenizer(tmp_path):
    tok = save_tokenizer(tmp_path)
    words = [["The", "function", "returns", "Zqx"], ["A", "module"], ["Each", "thread", "has", "data"]]
    tags = [["O", "O", "O", "B-PER"], ["O", "B-LOC"], ["B-PER", "I-PER", "O", "O"]]
    ev = EvalSet([" ".join(w) for w in words], labels=tags, source="hand", label_names=NAMES)
    assert ev.kind("token-classification") == "tags" and EvalSet(ev.texts).kind("token-classification") == "fidelity"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    b = ev.batches(tok, "token-classification", names, max_length=6, batch_size=2)
    assert len(b.batches_a) == 2 and list(b.batches_a[0]) == names and b.rows == 3
    assert b.tags == tags and b.label_names == NAMES
    for i, row in enumerate(words):
        enc = tok(row, is_split_into_words=True, truncation=True, max_length=6)
        feeds = b.batches_a[i // 2]["input_ids"][i % 2]
        for w, pos in enumerate(b.positions[i]):
            if pos < 0:  # cut off: the word has no token in the truncated encoding
                assert w not in enc.word_ids()
                continue
            assert enc.word_ids()[pos] == w and (pos == 1 or enc.word_ids()[pos - 1] != w)
            assert feeds[pos] == enc["input_ids"][pos]
    # "zqx" -> z ##q ##x starts at 4 (its tail cut off); "thread" -> t ##h ##r ... leaves no room for words 3, 4
    assert b.positions == [[1, 2, 3, 4], [1, 2], [1, 2, -1, -1]]
    head = b.head(2)
    assert head.positions == b.positions[:2] and head.tags == tags[:2] and head.label_names == NAMES
    assert ev.head(1).label_names == NAMES


def test_eval_rows_need_one_tag_per_word(tmp_path):
    tok = save_tokenizer(tmp_path)
    ev = EvalSet(["A module"], labels=[["O"]], source="bad")
    with pytest.raises(DataError, match="2 words but 1 tags"):
        ev.batches(tok, "token-classification", ["input_ids"], 16)
