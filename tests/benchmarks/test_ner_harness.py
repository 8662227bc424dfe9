"""The harness on token classification: entity F1 (seqeval) per word across ONNX and PyTorch, teacher agreement."""

from __future__ import annotations

import pytest

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.metrics import entity_scores
from benchmarks.report import validate_report
from benchmarks.runners.base import Threads
from tests.benchmarks.helpers import export_onnx
from tests.tiny import NER_LABELS, torch_tags

FAST = dict(batch_sizes=[1], seq_lens=[16], warmup=1, min_runs=3, min_seconds=0.0, threads=Threads(1, 1),
            eval_batch_size=2)
NAMES = [NER_LABELS[i] for i in range(len(NER_LABELS))]
WORDS = [["The", "function", "returns", "a", "list"], ["A", "module", "is", "a", "file"],
         ["Classes", "define", "new", "types"], ["The", "loop", "ends", "here", "now", "and", "then"],
         ["Errors", "are", "raised", "by", "Zqx", "thread"]]


def test_benchmark_reports_entity_f1_for_onnx_and_pytorch(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "token-classification")
    onnx = export_onnx(m, "token-classification", tmp_path / "ner.onnx")
    predicted = torch_tags(m, WORDS)
    gold = [row if i % 2 else ["O"] * len(row) for i, row in enumerate(predicted)]
    expected = entity_scores(gold, predicted)
    assert 0.0 < expected["f1"] < 1.0
    ev = EvalSet([" ".join(w) for w in WORDS], labels=gold, source="hand", label_names=NAMES)
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("onnx", onnx)], "token-classification",
                    BenchSettings(**FAST), tokenizer_path=str(m), eval_set=ev)
    by = {e["name"]: e for e in rep["models"]}
    assert [e["status"] for e in rep["models"]] == ["ok", "ok"], [e["reason"] for e in rep["models"]]
    for name in ("teacher", "onnx"):
        q = by[name]["quality"]
        assert q["metric"] == "f1" and q["value"] == pytest.approx(expected["f1"], abs=1e-6)
        assert q["extra"] == pytest.approx(expected, abs=1e-6)
    assert by["onnx"]["retention"] == pytest.approx(1.0)
    assert rep["data"]["kind"] == "tags" and rep["data"]["metric"] == "f1"
    validate_report(rep)


def test_benchmark_without_tags_scores_word_agreement_with_the_teacher(tiny_model_dir, tmp_path):
    from tests.tiny import make_tiny_model

    m = tiny_model_dir("bert", "token-classification")
    onnx = export_onnx(m, "token-classification", tmp_path / "ner.onnx")
    other = make_tiny_model(tmp_path / "other", "bert", "token-classification", seed=1)
    other_onnx = export_onnx(other, "token-classification", tmp_path / "other.onnx")
    ref, alt = torch_tags(m, WORDS), torch_tags(other, WORDS)
    same = sum(a == b for ra, rb in zip(ref, alt) for a, b in zip(ra, rb)) / sum(len(r) for r in ref)
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("onnx", onnx), ModelSpec("other", other_onnx)],
                    "token-classification", BenchSettings(**FAST), tokenizer_path=str(m),
                    eval_set=EvalSet([" ".join(w) for w in WORDS]))
    by = {e["name"]: e["quality"] for e in rep["models"]}
    assert by["onnx"] == {"metric": "word_agreement", "value": 1.0, "extra": {"word_agreement": 1.0}, "rows": len(WORDS)}
    assert by["other"]["value"] == pytest.approx(same) and same < 1.0
    validate_report(rep)


def test_tagged_rows_without_label_names_are_an_error_entry(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "token-classification")
    onnx = export_onnx(m, "token-classification", tmp_path / "ner.onnx")
    ev = EvalSet([" ".join(w) for w in WORDS], labels=[["O"] * len(w) for w in WORDS], source="hand")
    rep = benchmark([ModelSpec("onnx", onnx)], "token-classification", BenchSettings(**FAST), tokenizer_path=str(m),
                    eval_set=ev)
    assert rep["models"][0]["status"] == "error" and "label names" in rep["models"][0]["reason"]


def test_optimum_baselines_of_a_token_classifier_score_entity_f1(tiny_model_dir, tmp_path):
    from benchmarks.baseline import build_baselines

    m = tiny_model_dir("bert", "token-classification")
    built = build_baselines(["optimum-onnx", "optimum-int8-dynamic"], m, "token-classification", tmp_path / "base")
    assert sorted(built) == ["optimum-int8-dynamic", "optimum-onnx"] and all(p.is_file() for p in built.values())
    predicted = torch_tags(m, WORDS)
    ev = EvalSet([" ".join(w) for w in WORDS], labels=predicted, source="hand", label_names=NAMES)
    rep = benchmark([ModelSpec("teacher", m, role="teacher")] + [ModelSpec(n, p, role="baseline") for n, p in built.items()],
                    "token-classification", BenchSettings(**FAST), tokenizer_path=str(m), eval_set=ev)
    by = {e["name"]: e for e in rep["models"]}
    assert by["optimum-onnx"]["status"] == "ok" and by["optimum-onnx"]["quality"]["value"] == pytest.approx(1.0)
    assert by["optimum-int8-dynamic"]["quality"]["metric"] == "f1"
    assert 0.0 <= by["optimum-int8-dynamic"]["quality"]["value"] <= 1.0
    validate_report(rep)


def test_no_optimum_baseline_for_an_unknown_task(tiny_model_dir, tmp_path):
    from benchmarks.baseline import build_baselines
    from compress.core.errors import EdgepressError

    with pytest.raises(EdgepressError, match="no Optimum baseline for task 'summarization'"):
        build_baselines(["optimum-onnx"], tiny_model_dir("bert", "mlm"), "summarization", tmp_path / "b")
