"""report.md names every model once: the teacher by the model it is, each variant apart from a same-named one."""

from __future__ import annotations

from pathlib import Path

from benchmarks.api import distinct_names
from benchmarks.harness import ModelSpec
from benchmarks.report import to_markdown


def _entry(name: str, role: str, fmt: str, p50: float, retention: float, label: str) -> dict:
    return {"name": name, "role": role, "target": "local", "device": "cpu", "status": "ok", "format": fmt,
            "precision": "int8" if "int8" in name else "fp32", "size_mb": 10.0, "label": label,
            "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2}, "quality": {"metric": "spearman",
                                                                                      "value": 0.8 * retention},
            "retention": retention, "points": []}


def _report(models: list[dict], **extra) -> dict:
    return {"schema_version": 1, "tool": "edgepress test", "created": "2026-12-07T00:00:00+00:00",
            "task": "embedding", "teacher": "teacher", "data": None, "devices": {"local": {"cpu": "CPU", "arch": "x86_64"}},
            "settings": {"batch_sizes": [1], "seq_lens": [128], "realistic": False, "warmup": 1, "min_runs": 3,
                         "min_seconds": 0, "threads": {"intra_op": 1, "inter_op": 1}, "device": "cpu"},
            "models": models, **extra}


def test_distinct_names_split_a_repeated_name_by_format_then_by_number():
    specs = [ModelSpec("teacher", Path("t"), "pytorch", role="teacher"), ModelSpec("student", Path("s"), "pytorch"),
             ModelSpec("student", Path("s.onnx"), "onnx"), ModelSpec("model", Path("a/model.onnx")),
             ModelSpec("model", Path("b/model.onnx")), ModelSpec("student-int8", Path("q.onnx"), "onnx")]
    assert [s.name for s in distinct_names(specs)] == ["teacher", "student-pytorch", "student-onnx", "model",
                                                       "model-2", "student-int8"]


def test_report_md_names_the_teacher_model_and_every_ratio_row_apart():
    models = [_entry("teacher", "teacher", "pytorch", 12.0, 1.0, "d6-p00-v30522-fp32"),
              _entry("student-pytorch", "variant", "pytorch", 8.0, 0.981, "d3-p00-v30522-fp32"),
              _entry("student-onnx", "variant", "onnx", 4.0, 0.981, "d3-p00-v30522-fp32"),
              _entry("student-int8-dynamic", "variant", "onnx", 2.0, 0.975, "d3-p00-v30522-int8")]
    md = to_markdown(_report(models, teacher_model="sentence-transformers/all-MiniLM-L6-v2"))
    assert "Teacher: `sentence-transformers/all-MiniLM-L6-v2`." in md
    assert "| sentence-transformers/all-MiniLM-L6-v2 \\[d6-p00-v30522-fp32\\] (teacher) |" in md
    ratios = [row for row in md[md.index("## Ratios (local)"):].splitlines() if row.startswith("| local |")]
    names = [row.split(" | ")[1] for row in ratios]
    assert names == ["student-pytorch \\[d3-p00-v30522-fp32\\]", "student-onnx \\[d3-p00-v30522-fp32\\]",
                     "student-int8-dynamic \\[d3-p00-v30522-int8\\]"]
    assert [row.split(" | ")[2:4] for row in ratios] == [["98.1 %", "1.50×"], ["98.1 %", "3.00×"], ["97.5 %", "6.00×"]]
    assert "Teacher: `teacher`." in to_markdown(_report(models))  # a report without teacher_model (bench run)
