"""NER and QA data (issue 16 groundwork): readers, label alignment, document-stride windows, span decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress.core.errors import DataError
from compress.tasks.ner import IGNORE, TaggedSentences, align_labels, label_names, read_conll, read_jsonl
from compress.tasks.qa import QAExample, eval_features, predictions, read_squad, train_features


@pytest.fixture
def tok(tiny_model_dir):
    from compress.model.loading import load_tokenizer

    return load_tokenizer(str(tiny_model_dir("bert", "embedding")))


def test_conll_reader_skips_docstart_takes_the_last_column_and_splits_on_blank_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
                    "Blackburn NNP I-NP I-PER\n")
    s = read_conll(path)
    assert s.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert s.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert label_names(s) == ["O", "B-ORG", "B-PER", "I-PER"]


def test_conll_line_with_one_column_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected 'token TAG'"):
        read_conll(path)


def test_jsonl_tokens_and_tags_must_line_up(tmp_path):
    good = tmp_path / "g.jsonl"
    good.write_text(json.dumps({"tokens": ["Paris", "is", "big"], "tags": ["B-LOC", "O", "O"]}) + "\n")
    assert read_jsonl(good).tags == [["B-LOC", "O", "O"]]
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"tokens": ["Paris", "is"], "tags": ["B-LOC"]}) + "\n")
    with pytest.raises(DataError, match="row 1: 2 tokens but 1 tags"):
        read_jsonl(bad)


def test_first_sub_token_carries_the_tag_the_rest_is_ignored(tok):
    sents = TaggedSentences([["Python", "tokenizes", "everything"]], [["B-MISC", "O", "O"]])
    label2id = {"O": 0, "B-MISC": 1}
    out = align_labels(tok, sents, label2id, 32)
    pieces = tok.convert_ids_to_tokens(out["input_ids"][0])
    labels = out["labels"][0]
    assert labels[0] == IGNORE and labels[-1] == IGNORE  # [CLS], [SEP]
    words = []
    for piece, label in zip(pieces[1:-1], labels[1:-1]):
        if piece.startswith("##"):
            assert label == IGNORE
        else:
            words.append(label)
    assert words == [1, 0, 0]
    assert any(p.startswith("##") for p in pieces)  # the test needs a word split into sub-tokens


def test_tags_outside_the_label_set_are_refused(tok):
    with pytest.raises(DataError, match="B-XYZ"):
        align_labels(tok, TaggedSentences([["a"]], [["B-XYZ"]], "f.txt"), {"O": 0}, 16)


def _squad(tmp_path, start: int, impossible: bool = False):
    context = "The Normans gave their name to Normandy, a region in France."
    qa = {"id": "q1", "question": "Where is Normandy?", "is_impossible": impossible,
          "answers": [] if impossible else [{"text": "France", "answer_start": start}]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": [qa, {"id": "q2", "question": "Who?", "is_impossible": True, "answers": []}]}]}]}))
    return path


def test_squad_reader_v2_and_a_wrong_answer_start(tmp_path):
    start = "The Normans gave their name to Normandy, a region in France.".index("France")
    examples = read_squad(_squad(tmp_path, start))
    assert [e.answerable for e in examples] == [True, False]
    with pytest.raises(DataError, match="question q1: answer_start 3 does not point at 'France'"):
        read_squad(_squad(tmp_path, 3))


def test_train_windows_point_at_the_answer_or_at_cls(tok):
    filler = " ".join(["python modules and functions"] * 12)
    context = f"{filler} The answer is Normandy today. {filler}"
    ex = QAExample("q", "what is the answer", context, [{"text": "Normandy", "answer_start": context.index("Normandy")}])
    feats = train_features(tok, [ex], max_length=48, doc_stride=16)
    assert len(feats["input_ids"]) > 2  # the long context overflows into several windows
    hits = [(s, e) for s, e in zip(feats["start_positions"], feats["end_positions"]) if s != 0]
    assert hits and any(s == 0 for s in feats["start_positions"])
    for i, (s, e) in enumerate(zip(feats["start_positions"], feats["end_positions"])):
        if s:
            assert tok.decode(feats["input_ids"][i][s:e + 1]).replace(" ", "") == "normandy"


def test_predictions_decode_the_best_span_and_the_null_answer(tok):
    context = "The Normans gave their name to a module of the standard library."
    exs = [QAExample("a", "where", context), QAExample("b", "who", context)]
    feats = eval_features(tok, exs, max_length=64, doc_stride=16)
    n, length = len(feats["input_ids"]), len(feats["input_ids"][0])
    start, end = np.zeros((n, length)), np.zeros((n, length))
    offs = feats["offset_mapping"][0]
    k = next(i for i, o in enumerate(offs) if o is not None and context[o[0]:o[1]].lower() == "module")
    start[0, k], end[0, k] = 10.0, 10.0  # example a: a confident span
    start[1, 0], end[1, 0] = 10.0, 10.0  # example b: the null answer wins
    got = predictions(exs, feats, start, end)
    assert got["a"]["text"] == "module" and got["b"]["text"] == ""
