"""The quantizer's guard on token classification: entity F1 (seqeval) per word, retention vs fp32."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.evalset import EvalSet
from benchmarks.metrics import entity_scores
from benchmarks.sessions import input_names, open_session
from compress.quantize.evaluate import score, set_reference
from tests.quantize.helpers import TEXTS, export_tiny
from tests.tiny import NER_LABELS, torch_tags

NAMES = [NER_LABELS[i] for i in range(len(NER_LABELS))]
WORDS = [t.rstrip(".").split(" ") for t in TEXTS]


@pytest.fixture
def tiny_ner(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir("bert", "token-classification")
    onnx = export_tiny(model_dir, "token-classification", tmp_path / "ner.onnx")
    return model_dir, onnx, AutoTokenizer.from_pretrained(model_dir)


def _batches(onnx, tok, tags, batch_size=3, max_length=128):
    ev = EvalSet([" ".join(w) for w in WORDS], labels=tags, source="hand", label_names=NAMES)
    return ev.batches(tok, "token-classification", input_names(open_session(onnx)), max_length, batch_size)


def test_guard_scores_entity_f1_and_fp32_retains_itself(tiny_ner):
    model_dir, onnx, tok = tiny_ner
    predicted = torch_tags(model_dir, WORDS)
    gold = [row if i % 2 else ["O"] * len(row) for i, row in enumerate(predicted)]  # half the rows' entities kept
    expected = entity_scores(gold, predicted)["f1"]
    assert 0.05 < expected < 1.0  # the check below measures something
    ev = _batches(onnx, tok, gold)
    summary = set_reference(ev, onnx)
    assert summary["kind"] == "token-classification" and summary["f1"] == pytest.approx(expected, abs=1e-6)
    got = score(onnx, ev)
    assert got["basis"] == "f1" and got["retention"] == pytest.approx(1.0)
    assert got["f1"] == pytest.approx(expected, abs=1e-6) and got["fp32_f1"] == pytest.approx(expected, abs=1e-6)
    assert got["word_agreement"] == pytest.approx(1.0)


def test_guard_without_tags_falls_back_to_word_agreement(tiny_ner):
    _, onnx, tok = tiny_ner
    ev = EvalSet([" ".join(w) for w in WORDS]).batches(tok, "token-classification",
                                                       input_names(open_session(onnx)), 6)
    assert any(-1 in p for p in ev.positions)  # truncated words are skipped, not compared
    set_reference(ev, onnx)
    got = score(onnx, ev)
    assert got == {"word_agreement": 1.0, "retention": 1.0, "basis": "word_agreement"}


def test_guard_word_agreement_sees_a_different_model(tiny_ner, tiny_model_dir, tmp_path):
    from tests.tiny import make_tiny_model

    _, onnx, tok = tiny_ner
    other_dir = make_tiny_model(tmp_path / "other", "bert", "token-classification", seed=1)
    other = export_tiny(other_dir, "token-classification", tmp_path / "other.onnx")
    ev = _batches(onnx, tok, None)
    set_reference(ev, onnx)
    got = score(other, ev)
    ref_words = np.concatenate([np.array(r) for r in torch_tags(tiny_ner[0], WORDS)])
    other_words = np.concatenate([np.array(r) for r in torch_tags(other_dir, WORDS)])
    assert got["word_agreement"] == pytest.approx(float(np.mean(ref_words == other_words)), abs=1e-6)
    assert got["word_agreement"] < 1.0


def test_quantize_onnx_guards_a_token_classifier_on_entity_f1(tiny_ner, tmp_path):
    from compress.data.rows import TextData
    from compress.quantize.api import quantize_onnx
    from compress.quantize.config import QuantizeConfig

    model_dir, onnx, tok = tiny_ner
    gold = torch_tags(model_dir, WORDS)
    data = TextData([" ".join(w) for w in WORDS], labels=gold, source="hand", label_names=NAMES)
    cfg = QuantizeConfig.model_validate({"latency": {"runs": 3, "warmup": 1, "batch_size": 2, "seq_len": 16},
                                         "guard": {"eval_samples": 8}})
    report = quantize_onnx(onnx, tmp_path / "out", ["dynamic"], tok, calibration=data, eval_data=data,
                           task="token-classification", config=cfg)
    assert report["eval"]["kind"] == "token-classification" and report["eval"]["f1"] == pytest.approx(1.0)
    attempt = report["methods"]["dynamic"]["attempts"][0]
    assert attempt["basis"] == "f1" and 0.0 <= attempt["f1"] <= 1.0 and 0.0 <= attempt["word_agreement"] <= 1.0


def test_build_eval_set_keeps_tag_names_of_tagged_sentences_it_cuts(tiny_ner):
    from compress.quantize.evaluate import build_eval_set
    from compress.tasks.ner import TaggedSentences

    _, onnx, tok = tiny_ner
    sentences = TaggedSentences(WORDS, [["O"] * len(w) for w in WORDS], "hand")
    sentences.label_names = NAMES  # what the quantize stage sets: the model's id2label
    ev = build_eval_set(tok, sentences, "token-classification", onnx, 128, rows=3)
    assert ev.rows == 3 and ev.label_names == NAMES and ev.tags == sentences.tags[:3]
    assert set_reference(ev, onnx)["f1"] == 0.0  # all-O gold: no entity to find
