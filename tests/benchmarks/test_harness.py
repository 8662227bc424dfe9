"""Runners, quality outputs and reports on tiny models exported inside the tests."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.report import compare, load_report, pareto_front, validate_report, write_report
from benchmarks.runners.base import Threads
from tests.benchmarks.helpers import export_onnx, export_torchscript

FAST = dict(batch_sizes=[1], seq_lens=[16], warmup=1, min_runs=3, min_seconds=0.0, threads=Threads(1, 1))

PAIRS = EvalSet(
    texts=["The function returns a list.", "A module is a file.", "Classes define new types.", "The loop ends here.",
           "Errors are raised by code.", "Names refer to objects."],
    pairs=["A list is returned by the function.", "The file holds a module.", "Objects are instances.",
           "This loop never ends.", "Code raises an exception.", "Objects have names."],
    labels=[4.8, 4.0, 2.1, 1.0, 3.9, 3.3], source="hand-made pairs")


def _torch_embed(model_dir, texts):
    from compress.model.loading import load_model, load_tokenizer, mean_pool

    tok, model = load_tokenizer(str(model_dir)), load_model(str(model_dir), "embedding")
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        return mean_pool(model(**enc).last_hidden_state, enc["attention_mask"]).numpy()


def test_sts_quality_matches_hand_computation_across_backends(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "embedding")
    onnx = export_onnx(m, "embedding", tmp_path / "student.onnx")
    ts = export_torchscript(m, "embedding", tmp_path / "student.pt")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("onnx", onnx), ModelSpec("ts", ts)],
                        "embedding", BenchSettings(**FAST), tokenizer_path=str(m), eval_set=PAIRS)
        assert torch.get_num_threads() == 2  # the runners ran on 1 thread and gave the process its pool back
    finally:
        torch.set_num_threads(threads_before)
    a, b = _torch_embed(m, PAIRS.texts), _torch_embed(m, PAIRS.pairs)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    expected = spearmanr(cos, PAIRS.labels).statistic
    by = {e["name"]: e for e in rep["models"]}
    assert [e["status"] for e in rep["models"]] == ["ok", "ok", "ok"]
    assert by["teacher"]["quality"]["metric"] == "spearman"
    assert by["teacher"]["quality"]["value"] == pytest.approx(expected, abs=1e-6)
    assert by["onnx"]["quality"]["value"] == pytest.approx(expected, abs=1e-4)
    assert by["ts"]["quality"]["value"] == pytest.approx(expected, abs=1e-4)
    assert by["onnx"]["retention"] == pytest.approx(1.0, abs=1e-3)
    assert by["onnx"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert by["onnx"]["size_mb"] == pytest.approx(onnx.stat().st_size / 1e6, rel=1e-3)
    for e in rep["models"]:
        assert 0 < e["latency_ms"]["p50"] <= e["latency_ms"]["p90"] <= e["latency_ms"]["p99"]
        assert e["cold_start_ms"] > 0 and e["peak_rss_mb"] > 10
        assert e["runtime"]["threads"] == {"intra_op": 1, "inter_op": 1}
    validate_report(rep)


def test_classification_accuracy_and_fidelity(tiny_model_dir, tmp_path):
    from compress.model.loading import load_model, load_tokenizer

    m = tiny_model_dir("bert", "classification")
    onnx = export_onnx(m, "classification", tmp_path / "cls.onnx")
    texts = PAIRS.texts + PAIRS.pairs
    labels = [i % 2 for i in range(len(texts))]
    tok, model = load_tokenizer(str(m)), load_model(str(m), "classification")
    with torch.no_grad():
        pred = model(**tok(texts, padding=True, return_tensors="pt")).logits.argmax(-1).numpy()
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("cls", onnx)], "classification",
                    BenchSettings(**FAST), tokenizer_path=str(m), eval_set=EvalSet(texts, None, labels))
    onnx_entry = rep["models"][1]
    assert onnx_entry["quality"]["metric"] == "accuracy"
    assert onnx_entry["quality"]["value"] == pytest.approx(float((pred == np.array(labels)).mean()))
    assert "f1" in onnx_entry["quality"]["extra"]
    # without labels the metric is agreement with the teacher
    rep2 = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("cls", onnx)], "classification",
                     BenchSettings(**FAST), tokenizer_path=str(m), eval_set=EvalSet(texts))
    assert rep2["models"][1]["quality"]["metric"] == "top1_agreement"
    assert rep2["models"][1]["quality"]["value"] == pytest.approx(1.0)
    assert rep2["models"][1]["retention"] == pytest.approx(1.0)


def test_embedding_fidelity_of_a_different_model(tiny_model_dir, tmp_path):
    from tests.tiny import make_tiny_model

    teacher = tiny_model_dir("bert", "embedding")
    other = make_tiny_model(tmp_path / "other", "bert", "embedding", seed=1)
    onnx = export_onnx(other, "embedding", tmp_path / "other.onnx")
    ev = EvalSet(PAIRS.texts + PAIRS.pairs)
    rep = benchmark([ModelSpec("teacher", teacher, role="teacher"), ModelSpec("other", onnx)], "embedding",
                    BenchSettings(**FAST), tokenizer_path=str(teacher), eval_set=ev)
    t, o = _torch_embed(teacher, ev.texts), _torch_embed(other, ev.texts)
    cos = ((t * o).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(o, axis=1)).mean()
    q = rep["models"][1]["quality"]
    assert q["metric"] == "fidelity_cosine" and q["value"] == pytest.approx(cos, abs=1e-4)
    assert q["value"] < 0.999
    assert rep["models"][0]["quality"]["value"] == pytest.approx(1.0)
    assert rep["models"][1]["retention"] == pytest.approx(q["value"])
    assert rep["data"]["kind"] == "fidelity"


def test_regression_scores_are_logits_column_zero(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "regression")
    onnx = export_onnx(m, "regression", tmp_path / "reg.onnx")
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("reg", onnx)], "regression",
                    BenchSettings(**FAST), tokenizer_path=str(m), eval_set=PAIRS)
    t, v = rep["models"][0]["quality"], rep["models"][1]["quality"]
    assert t["metric"] == "spearman" and v["value"] == pytest.approx(t["value"], abs=1e-4)
    assert set(v["extra"]) == {"spearman", "pearson"}


def test_errors_and_skips_are_recorded(tiny_model_dir, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00not onnx" * 50)
    package = tmp_path / "m.mlpackage"  # Core ML: a known format no runner here can run
    package.mkdir()
    (package / "Manifest.json").write_text("{}")
    m = tiny_model_dir("bert", "embedding")
    rep = benchmark([ModelSpec("broken", bad), ModelSpec("coreml", package)], "embedding", BenchSettings(**FAST),
                    tokenizer_path=str(m))
    broken, skipped = rep["models"]
    assert broken["status"] == "error" and "onnxruntime cannot load" in broken["reason"]
    assert broken["size_mb"] == pytest.approx(450 / 1e6)
    assert skipped["status"] == "skipped" and "Core ML" in skipped["reason"]
    if not torch.cuda.is_available():
        onnx = export_onnx(m, "embedding", tmp_path / "m.onnx")
        rep = benchmark([ModelSpec("gpu", onnx)], "embedding", BenchSettings(**{**FAST, "device": "cuda"}))
        assert rep["models"][0]["status"] == "skipped" and "CUDAExecutionProvider" in rep["models"][0]["reason"]
    validate_report(rep)


def test_report_files_schema_and_compare(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "embedding")
    onnx = export_onnx(m, "embedding", tmp_path / "s.onnx")
    rep = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("student", onnx)], "embedding",
                    BenchSettings(**{**FAST, "batch_sizes": [1, 2], "seq_lens": [8, 16]}), tokenizer_path=str(m),
                    eval_set=PAIRS)
    paths = write_report(rep, tmp_path / "out")
    loaded = json.loads(paths["json"].read_text())
    validate_report(loaded)
    assert [(p["batch"], p["seq"]) for p in loaded["models"][1]["points"]] == [(1, 8), (1, 16), (2, 8), (2, 16)]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 5000
    md = paths["md"].read_text()
    assert "| local (" in md and "student" in md and "## Sweep" in md and "100.0 %" in md
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["variant"] for r in rows] == ["teacher", "student"]
    assert float(rows[1]["p50_ms"]) == pytest.approx(loaded["models"][1]["latency_ms"]["p50"])
    broken = dict(loaded, models=[dict(loaded["models"][0], latency_ms={"p50": 1.0})])
    with pytest.raises(Exception, match="latency_ms"):
        validate_report(broken)
    notes, header, table = compare([load_report(tmp_path / "out"), load_report(paths["json"])], ["a", "b"])
    assert notes == [] and len(table) == 2
    assert header[3:7] == ["a metric", "a retention", "a p50 ms", "a size MB"]
    assert header[7:13] == ["b metric", "b retention", "b p50 ms", "b size MB", "b Δ retention", "b p50 vs a"]
    assert table[1][4] == "100.0 %" and table[1][4] == table[1][8] and table[1][11] == "+0.0 pp"
    assert table[1][12] == "1.00×"


def test_compare_matches_models_by_weights_and_names_what_they_are(tiny_model_dir, tmp_path):
    """Two runs whose 'student' rows are different models get two rows (hash + shape label); one model under two
    names is one row; a failed model shows its reason; differing settings are named above the table."""
    from benchmarks.report import compare_markdown, plot_pareto
    from compress.distill.student import student_from_teacher
    from compress.model.loading import load_model, load_tokenizer

    m = tiny_model_dir("bert", "embedding")
    small = tmp_path / "small"
    student_from_teacher(load_model(str(m), "embedding"), [0])[0].save_pretrained(small)
    load_tokenizer(str(m)).save_pretrained(small)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a_onnx = export_onnx(m, "embedding", tmp_path / "a" / "model.onnx")
    b_onnx = export_onnx(small, "embedding", tmp_path / "b" / "model.onnx")
    run = dict(tokenizer_path=str(m), eval_set=PAIRS)
    rep_a = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("student", a_onnx, shape_source=m)],
                      "embedding", BenchSettings(**FAST), **run)
    rep_b = benchmark([ModelSpec("teacher", m, role="teacher"), ModelSpec("student", b_onnx, shape_source=small),
                       ModelSpec("renamed", a_onnx), ModelSpec("broken", tmp_path / "missing.onnx")],
                      "embedding", BenchSettings(**{**FAST, "threads": Threads(2, 1)}), **run)
    for rep in (rep_a, rep_b):
        validate_report(rep)
    vocab = f"v{json.loads((m / 'config.json').read_text())['vocab_size']}"  # exact: 684 tokens is v684
    assert rep_a["models"][1]["label"] == f"d2-p00-{vocab}-fp32"
    assert rep_b["models"][1]["label"] == f"d1-p00-{vocab}-fp32"
    assert rep_b["models"][2]["sha256"] == rep_a["models"][1]["sha256"] != rep_b["models"][1]["sha256"]
    notes, header, table = compare([rep_a, rep_b], ["a", "b"])
    assert notes == ["threads differs: a=1/1; b=2/1"]
    by_model = {r[0].split(" #")[0]: r for r in table}
    assert set(by_model) == {f"teacher [d2-p00-{vocab}-fp32]", f"student [d2-p00-{vocab}-fp32] / renamed",
                             f"student [d1-p00-{vocab}-fp32]", "broken"}
    same = by_model[f"student [d2-p00-{vocab}-fp32] / renamed"]
    assert same[3] != "–" and same[7] != "–"  # measured in both runs: one row
    assert by_model[f"student [d1-p00-{vocab}-fp32]"][3] == "–"  # only in run b
    assert by_model["broken"][7].startswith("error:")
    assert compare_markdown(header, table, notes).startswith("> threads differs")
    png = plot_pareto(rep_b, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_front():
    pts = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 80.0), (2.0, 96.0)]
    assert pareto_front(pts) == [3, 0, 4]


def test_end_to_end_latency_tokenizes_inside_every_timed_call(tiny_model_dir, tmp_path, monkeypatch):
    import benchmarks.harness as harness

    m = tiny_model_dir("bert", "embedding")
    onnx = export_onnx(m, "embedding", tmp_path / "student.onnx")
    calls = []
    real = harness.tokenize_feeds
    monkeypatch.setattr(harness, "tokenize_feeds", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    settings = BenchSettings(**{**FAST, "realistic": True, "realistic_batches": 4, "min_runs": 5})
    e = harness.end_to_end_latency(_loaded_runner(onnx), settings, _tokenizer(m), PAIRS)
    blocks = settings.rounds * (settings.warmup + -(-settings.min_runs // settings.rounds))
    assert len(calls) == blocks  # one tokenisation per call (warm-up included), timed with it
    assert all(len(texts) == 1 and texts[0] in PAIRS.texts + PAIRS.pairs for texts in calls)  # one sentence a call
    assert e["batch"] == 1 and e["latency_ms"]["p50"] > 0 and e["tokenizer"]

    monkeypatch.setattr(harness, "tokenize_feeds", real)
    rep = benchmark([ModelSpec("onnx", onnx)], "embedding", BenchSettings(**{**FAST, "realistic": True}),
                    tokenizer_path=str(m), eval_set=PAIRS)
    validate_report(rep)
    assert rep["models"][0]["end_to_end"]["latency_ms"]["p50"] > 0
    fixed = benchmark([ModelSpec("onnx", onnx)], "embedding", BenchSettings(**FAST), tokenizer_path=str(m), eval_set=PAIRS)
    assert "end_to_end" not in fixed["models"][0]  # synthetic fixed-length feeds have no text to tokenise


def _tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _loaded_runner(onnx):
    from benchmarks.runners import runner_class

    runner = runner_class("onnx", "cpu")(onnx, "embedding", Threads(1, 1))
    runner.load()
    return runner
