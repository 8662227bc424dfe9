"""The pipeline stage (report.json in its own folder) and the `edgepress bench` CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from compress.core.errors import EdgepressError
from compress.run.pipeline import stage_inputs
from compress.run.stages import StageRecord, Variant
from tests.benchmarks.helpers import export_onnx


def _config(teacher, shared_data, tmp_path, **bench):
    from compress.config import RunConfig

    return RunConfig.model_validate({
        "name": "t", "output_dir": str(tmp_path / "runs"), "task": "embedding",
        "teacher": {"model": str(teacher), "max_length": 64},
        "data": {"train": str(shared_data / "stsb" / "dev.tsv"), "test": str(shared_data / "stsb" / "test.tsv"),
                 "text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "score"},
        "bench": {"warmup": 1, "min_runs": 3, "min_seconds": 0.0, "threads": 1, "max_eval_samples": 24, **bench},
    })


def _tree(root, skip):
    """Every path under ``root`` but ``skip``'s subtree -> (size, mtime_ns): what a stage must leave as it was."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p != skip and skip not in p.parents}


def test_stage_measures_teacher_and_variants(tiny_model_dir, shared_data, tmp_path):
    teacher = tiny_model_dir("bert", "embedding")
    cfg = _config(teacher, shared_data, tmp_path, sweep_batch_sizes=[2])
    export_dir = tmp_path / "runs" / "t" / "02-export"
    export_dir.mkdir(parents=True)
    export_onnx(teacher, "embedding", export_dir / "model.onnx")
    (export_dir / "model.pte").write_bytes(b"x")
    rec = StageRecord("export", export_dir, {"onnx": "model.onnx"}, {},
                      [Variant("student-onnx", "onnx", "model.onnx"), Variant("student-pte", "executorch", "model.pte")])
    inputs = stage_inputs(cfg, cfg.run_dir, [rec])
    assert inputs.data.splits().test  # the run's data artifact, split before any stage as a pipeline does
    out = tmp_path / "runs" / "t" / "05-bench"
    out.mkdir()
    from benchmarks.stage import run_stage

    before = _tree(tmp_path, out)
    result = run_stage(cfg, inputs, out)
    assert _tree(tmp_path, out) == before  # nothing outside out_dir created or changed (the pipeline copies the report)
    report = json.loads((out / "report.json").read_text())
    assert all((out / name).is_file() for name in ("report.md", "pareto.png", "report.csv"))
    names = [m["name"] for m in report["models"]]
    assert names == ["teacher", "student-onnx", "student-pte"]
    teacher_e, onnx_e, pte_e = report["models"]
    assert report["data"]["kind"] == "sts" and report["data"]["rows"] == 24
    assert teacher_e["quality"]["metric"] == "spearman" and -1 <= teacher_e["quality"]["value"] <= 1
    assert onnx_e["quality"]["value"] == pytest.approx(teacher_e["quality"]["value"], abs=1e-4)
    assert onnx_e["retention"] == pytest.approx(1.0, abs=1e-3)
    assert onnx_e["latency_ms"]["p50"] > 0 and onnx_e["latency_ms"]["p90"] >= onnx_e["latency_ms"]["p50"]
    assert [p["batch"] for p in onnx_e["points"]] == [1, 2] and onnx_e["points"][0]["seq"] == "realistic"
    # a broken .pte (one byte) is that model's one-line error; the other rows are measured all the same
    assert pte_e["status"] == "error" and pte_e["size_mb"] == pytest.approx(1e-6)
    assert pte_e["reason"].startswith("ExecuTorch cannot load") and "model.pte" in pte_e["reason"]
    assert result.metrics["student-onnx"]["p50_ms"] == pytest.approx(onnx_e["latency_ms"]["p50"])
    assert result.metrics["metric"] == "spearman" and result.outputs["json"] == "report.json"


def test_bench_config_validates():
    from benchmarks.config import BenchConfig

    assert BenchConfig().inter_threads == 1 and BenchConfig().realistic is True
    with pytest.raises(Exception, match="ssh://"):
        BenchConfig(targets=["pi@host"])
    with pytest.raises(Exception, match=">= 1"):
        BenchConfig(sweep_batch_sizes=[0])
    assert BenchConfig.model_validate_json(BenchConfig(seq_lens=[32, 64]).model_dump_json()).seq_lens == [32, 64]


def test_cli_run_and_compare(tiny_model_dir, tmp_path):
    m = tiny_model_dir("bert", "embedding")
    onnx = export_onnx(m, "embedding", tmp_path / "s.onnx")
    data = tmp_path / "pairs.tsv"
    data.write_text("a\tb\ts\nthe cat sat\ta cat sat\t4.5\nthe dog ran\tthe cat slept\t1.0\n"
                    "a list of names\tnames in a list\t4.0\nclasses are types\terrors are raised\t0.5\n")
    runner = CliRunner()
    res = runner.invoke(app, ["run", f"student={onnx}", "--teacher", str(m), "--data", str(data), "--text-column", "a",
                              "--pair-column", "b", "--label-column", "s", "--batch", "1,2", "--seq", "8",
                              "--threads", "1", "--warmup", "1", "--min-runs", "3", "--min-seconds", "0",
                              "--out", str(tmp_path / "r1")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert [m_["name"] for m_ in rep["models"]] == ["teacher", "student"]
    assert rep["teacher_model"] == m.name and f"Teacher: `{m.name}`." in (tmp_path / "r1" / "report.md").read_text()
    assert rep["models"][1]["retention"] == pytest.approx(1.0, abs=1e-3)
    assert len(rep["models"][1]["points"]) == 2
    res = runner.invoke(app, ["compare", str(tmp_path / "r1"), str(tmp_path / "r1" / "report.json"),
                              "--out", str(tmp_path / "cmp.md")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cmp.md").read_text().count("| student #") == 1  # one model (same weights), named with its hash
    res = runner.invoke(app, ["run", str(tmp_path / "missing.onnx")])
    assert isinstance(res.exception, EdgepressError) and "does not exist" in str(res.exception)
    res = runner.invoke(app, ["run", str(onnx), "--batch", "x"])
    assert isinstance(res.exception, EdgepressError) and "--batch" in str(res.exception)
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "compare" in res.output and "run" in res.output


def test_stage_builds_optimums_static_int8_calibrated_on_the_training_split(tiny_model_dir, shared_data, tmp_path):
    import onnx

    from benchmarks.baseline import CALIBRATION_ROWS
    from benchmarks.stage import calibration_text, run_stage
    from compress.data.rows import load_splits

    teacher = tiny_model_dir("bert", "embedding")
    cfg = _config(teacher, shared_data, tmp_path, baselines=["optimum-int8-static"])
    inputs = stage_inputs(cfg, cfg.run_dir, [])
    texts, pairs = calibration_text(cfg, inputs)
    train = load_splits(cfg.data, "embedding", cfg.seed).train
    assert texts == train.texts and pairs == train.pairs and len(texts) > CALIBRATION_ROWS
    out = tmp_path / "runs" / "t" / "01-bench"
    out.mkdir(parents=True)
    run_stage(cfg, inputs, out)
    entry = {m["name"]: m for m in json.loads((out / "report.json").read_text())["models"]}["optimum-int8-static"]
    assert entry["status"] == "ok" and entry["role"] == "baseline" and entry["precision"] == "int8"
    assert entry["quality"]["metric"] == "spearman"
    ops = {n.op_type for n in onnx.load(entry["path"]).graph.node}
    assert "QuantizeLinear" in ops and "DynamicQuantizeLinear" not in ops  # activations at calibrated scales
    assert not (out / "baselines" / "optimum-int8-static" / "augmented_model.onnx").exists()


def test_static_baseline_refuses_tasks_and_runs_without_calibration_text(tiny_model_dir, tmp_path):
    from benchmarks.baseline import build_baselines

    with pytest.raises(EdgepressError, match="optimum-int8-static calibrates on sentences .* not question-answering"):
        build_baselines(["optimum-int8-static"], tiny_model_dir("bert", "question-answering"), "question-answering",
                        tmp_path / "a", calibration=(["a"], None))
    with pytest.raises(EdgepressError, match="needs calibration text"):
        build_baselines(["optimum-int8-static"], tiny_model_dir("bert", "embedding"), "embedding", tmp_path / "b")
