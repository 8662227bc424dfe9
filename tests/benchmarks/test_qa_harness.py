"""The harness on question answering: SQuAD F1 of the windows' answers across ONNX and PyTorch, teacher agreement."""

from __future__ import annotations

import pytest

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark, realistic_feeds
from benchmarks.metrics import squad_scores
from benchmarks.report import validate_report
from benchmarks.runners.base import Threads
from compress.tasks.qa import QAData, QAExample
from tests.benchmarks.helpers import export_onnx
from tests.squad_tiny import DOC_STRIDE, EXAMPLES, MAX_LENGTH, gold_half_predicted, torch_answers

FAST = dict(batch_sizes=[1], seq_lens=[16], warmup=1, min_runs=3, min_seconds=0.0, threads=Threads(1, 1),
            eval_batch_size=2, max_length=MAX_LENGTH)


def _eval_set(examples: list[QAExample] | None) -> EvalSet:
    data = QAData(examples or EXAMPLES, "hand")
    return EvalSet(data.texts, data.pairs, None if examples is None else data.labels, "hand", examples=examples,
                   doc_stride=DOC_STRIDE)


def _gold(examples: list[QAExample], answers: list[str]) -> list[QAExample]:
    return [QAExample(e.id, e.question, e.context, [{"text": a, "answer_start": e.context.index(a)}] if a else [])
            for e, a in zip(examples, answers)]


def test_benchmark_reports_squad_f1_for_onnx_and_pytorch(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "question-answering")
    onnx = export_onnx(m, "question-answering", tmp_path / "qa.onnx")
    gold = gold_half_predicted(m)
    expected = squad_scores(gold, {e.id: a for e, a in zip(gold, torch_answers(m))})
    assert 5.0 < expected["f1"] < 100.0 and expected["HasAns_total"] and expected["NoAns_total"]
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("onnx", onnx)], "question-answering",
                    BenchSettings(**FAST), tokenizer_path=str(m), eval_set=_eval_set(gold))
    by = {e["name"]: e for e in rep["models"]}
    assert [e["status"] for e in rep["models"]] == ["ok", "ok"], [e["reason"] for e in rep["models"]]
    for name in ("teacher", "onnx"):
        q = by[name]["quality"]
        assert q["metric"] == "f1" and q["value"] == pytest.approx(expected["f1"], abs=1e-4)
        assert q["extra"] == pytest.approx(expected, abs=1e-4) and q["rows"] == len(gold)
    assert by["onnx"]["retention"] == pytest.approx(1.0)
    assert rep["data"]["kind"] == "spans" and rep["data"]["metric"] == "f1"
    validate_report(rep)


def test_benchmark_without_answers_scores_answer_agreement_with_the_teacher(tiny_model_dir, tmp_path):
    from tests.tiny import make_tiny_model

    m = tiny_model_dir("bert", "question-answering")
    onnx = export_onnx(m, "question-answering", tmp_path / "qa.onnx")
    other = make_tiny_model(tmp_path / "other", "bert", "question-answering", seed=1)
    other_onnx = export_onnx(other, "question-answering", tmp_path / "other.onnx")
    same = sum(a == b for a, b in zip(torch_answers(m), torch_answers(other))) / len(EXAMPLES)
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("onnx", onnx), ModelSpec("other", other_onnx)],
                    "question-answering", BenchSettings(**FAST), tokenizer_path=str(m), eval_set=_eval_set(None))
    by = {e["name"]: e for e in rep["models"]}
    assert by["onnx"]["quality"] == {"metric": "answer_agreement", "value": 1.0, "extra": {"answer_agreement": 1.0},
                                     "rows": len(EXAMPLES)}
    assert by["other"]["quality"]["value"] == pytest.approx(same) and same < 1.0
    assert by["other"]["retention"] == pytest.approx(same) and rep["data"]["kind"] == "fidelity"
    validate_report(rep)


def test_realistic_latency_feeds_encode_question_and_context(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    m = tiny_model_dir("bert", "question-answering")
    tok, ev = AutoTokenizer.from_pretrained(m), _eval_set(None)
    feeds = realistic_feeds(tok, ev, 2, 3, MAX_LENGTH, seed=0)
    questions_only = max(len(tok(q)["input_ids"]) for q in ev.texts)
    for f in feeds:  # every context overflows a window: each pair fills max_length, as the eval windows do
        assert f["input_ids"].shape == (2, MAX_LENGTH) and f["token_type_ids"].max() == 1
    assert questions_only < MAX_LENGTH
    onnx = export_onnx(m, "question-answering", tmp_path / "qa.onnx")
    rep = benchmark([ModelSpec("onnx", onnx)], "question-answering", BenchSettings(**dict(FAST, realistic=True,
                    realistic_batches=2)), tokenizer_path=str(m), eval_set=ev)
    point = rep["models"][0]["points"][0]
    assert rep["models"][0]["status"] == "ok" and point["mean_padded_seq"] == MAX_LENGTH
    validate_report(rep)


def test_optimum_baselines_of_a_qa_model_score_squad_f1(tiny_model_dir, tmp_path):
    from benchmarks.baseline import build_baselines

    m = tiny_model_dir("bert", "question-answering")
    built = build_baselines(["optimum-onnx", "optimum-int8-dynamic"], m, "question-answering", tmp_path / "base")
    assert sorted(built) == ["optimum-int8-dynamic", "optimum-onnx"] and all(p.is_file() for p in built.values())
    gold = _gold(EXAMPLES, torch_answers(m))
    rep = benchmark([ModelSpec("teacher", m, role="teacher")] + [ModelSpec(n, p, role="baseline") for n, p in built.items()],
                    "question-answering", BenchSettings(**FAST), tokenizer_path=str(m), eval_set=_eval_set(gold))
    by = {e["name"]: e for e in rep["models"]}
    assert by["teacher"]["quality"]["value"] == pytest.approx(100.0)
    assert by["optimum-onnx"]["status"] == "ok" and by["optimum-onnx"]["quality"]["value"] == pytest.approx(100.0)
    assert by["optimum-int8-dynamic"]["quality"]["metric"] == "f1"
    assert 0.0 <= by["optimum-int8-dynamic"]["quality"]["value"] <= 100.0
    validate_report(rep)
