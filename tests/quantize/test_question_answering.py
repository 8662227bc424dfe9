"""The quantizer's guard on question answering: SQuAD F1 of the windows' answers, answer agreement with fp32."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.evalset import EvalSet
from benchmarks.metrics import squad_scores
from benchmarks.sessions import input_names, open_session
from compress.quantize.evaluate import score, set_reference
from compress.tasks.qa import QAData, QAExample
from tests.quantize.helpers import export_tiny
from tests.squad_tiny import DOC_STRIDE, EXAMPLES, MAX_LENGTH, gold_half_predicted, torch_answers


@pytest.fixture
def tiny_qa(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir("bert", "question-answering")
    onnx = export_tiny(model_dir, "question-answering", tmp_path / "qa.onnx")
    return model_dir, onnx, AutoTokenizer.from_pretrained(model_dir)


def _eval_set(examples: list[QAExample], gold: bool = True) -> EvalSet:
    data = QAData(examples, "hand")
    return EvalSet(data.texts, data.pairs, data.labels if gold else None, "hand", examples=examples if gold else None,
                   doc_stride=DOC_STRIDE)


def _batches(onnx, tok, ev: EvalSet, batch_size: int = 3):
    return ev.batches(tok, "question-answering", input_names(open_session(onnx)), MAX_LENGTH, batch_size)


def test_guard_scores_squad_f1_and_fp32_retains_itself(tiny_qa):
    model_dir, onnx, tok = tiny_qa
    gold = gold_half_predicted(model_dir)
    expected = squad_scores(gold, {e.id: a for e, a in zip(gold, torch_answers(model_dir))})["f1"]
    assert 5.0 < expected < 100.0  # the check below measures something
    ev = _batches(onnx, tok, _eval_set(gold))
    assert len(ev.windows["example_index"]) > len(EXAMPLES)  # contexts overflow into several windows
    summary = set_reference(ev, onnx)
    assert summary["kind"] == "question-answering" and summary["f1"] == pytest.approx(expected, abs=1e-4)
    got = score(onnx, ev)
    assert got["basis"] == "f1" and got["retention"] == pytest.approx(1.0)
    assert got["f1"] == pytest.approx(expected, abs=1e-4) and got["fp32_f1"] == pytest.approx(expected, abs=1e-4)
    assert got["answer_agreement"] == pytest.approx(1.0)


def test_guard_without_answers_scores_answer_agreement_with_fp32(tiny_qa, tmp_path):
    from tests.tiny import make_tiny_model

    model_dir, onnx, tok = tiny_qa
    other_dir = make_tiny_model(tmp_path / "other", "bert", "question-answering", seed=1)
    other = export_tiny(other_dir, "question-answering", tmp_path / "other.onnx")
    ev = _batches(onnx, tok, _eval_set(EXAMPLES, gold=False))  # rows only: examples built from them
    assert ev.answers is None and [e.id for e in ev.examples] == [str(i) for i in range(len(EXAMPLES))]
    set_reference(ev, onnx)
    assert score(onnx, ev) == {"answer_agreement": 1.0, "retention": 1.0, "basis": "answer_agreement"}
    same = float(np.mean([a == b for a, b in zip(torch_answers(model_dir), torch_answers(other_dir))]))
    got = score(other, ev)
    assert got["answer_agreement"] == pytest.approx(same) and same < 1.0
    assert got["basis"] == "answer_agreement" and got["retention"] == pytest.approx(same)


def test_fp32_f1_below_five_percent_falls_back_to_answer_agreement(tiny_qa):
    model_dir, onnx, tok = tiny_qa
    predicted = torch_answers(model_dir)
    assert all(predicted)  # every question gets a span: gold [] scores 0 on each
    first, ctx = predicted[0], EXAMPLES[0].context
    overlap = ctx[ctx.index(first) + len(first) - len(first.split()[-1]):]  # shares one word with the answer
    gold = [QAExample(e.id, e.question, e.context, [] if i else [{"text": overlap, "answer_start": ctx.index(overlap)}])
            for i, e in enumerate(EXAMPLES)]
    fp32_f1 = squad_scores(gold, dict(zip([e.id for e in gold], predicted)))["f1"]
    assert 0.05 < fp32_f1 < 5.0  # above MIN_REFERENCE on a 0-1 scale, noise on SQuAD's 0-100
    ev = _batches(onnx, tok, _eval_set(gold))
    set_reference(ev, onnx)
    got = score(onnx, ev)
    assert got["basis"] == "answer_agreement" and got["f1"] == pytest.approx(fp32_f1, abs=1e-4)


def test_eval_set_from_qa_data_and_head_keep_questions_whole(tiny_qa):
    _, onnx, tok = tiny_qa
    data = QAData(EXAMPLES, "hand")
    data.doc_stride, data.max_answer_length = DOC_STRIDE, 5  # what the quantize stage sets from data.*
    es = EvalSet.from_text_data(data)
    assert es.kind("question-answering") == "spans" and es.examples == EXAMPLES
    assert (es.doc_stride, es.max_answer_length) == (DOC_STRIDE, 5)
    cut = es.head(3)
    assert cut.examples == EXAMPLES[:3] and cut.doc_stride == DOC_STRIDE and cut.labels == data.labels[:3]
    ev = _batches(onnx, tok, es)
    small = ev.head(3)
    n = sum(1 for i in ev.windows["example_index"] if i < 3)
    assert small.rows == 3 and small.examples == EXAMPLES[:3] and small.max_answer_length == 5
    assert sum(b["input_ids"].shape[0] for b in small.batches_a) == n == len(small.windows["offset_mapping"])
    set_reference(small, onnx)
    assert len(small.reference["outputs"]["answers"]) == 3


def test_quantize_onnx_guards_a_qa_model_on_squad_f1(tiny_qa, tmp_path):
    from compress.quantize.api import quantize_onnx
    from compress.quantize.config import QuantizeConfig

    model_dir, onnx, tok = tiny_qa
    predicted = torch_answers(model_dir)
    data = QAData([QAExample(e.id, e.question, e.context,
                             [{"text": p, "answer_start": e.context.index(p)}] if p else [])
                   for e, p in zip(EXAMPLES, predicted)], "hand")
    data.doc_stride = DOC_STRIDE
    cfg = QuantizeConfig.model_validate({"latency": {"runs": 3, "warmup": 1, "batch_size": 2, "seq_len": 16},
                                         "guard": {"eval_samples": 8}})
    report = quantize_onnx(onnx, tmp_path / "out", ["dynamic"], tok, calibration=data, eval_data=data,
                           task="question-answering", max_length=MAX_LENGTH, config=cfg)
    assert report["eval"]["kind"] == "question-answering" and report["eval"]["f1"] == pytest.approx(100.0)
    attempt = report["methods"]["dynamic"]["attempts"][0]
    assert attempt["basis"] == "f1" and 0.0 <= attempt["f1"] <= 100.0 and 0.0 <= attempt["answer_agreement"] <= 1.0
    assert attempt["retention"] == pytest.approx(attempt["f1"] / 100.0, abs=1e-5)
