"""`edgepress bench headline` (benchmarks/headline.py): ratios and target checks from a finished run's report.json."""

import json

import pytest

from benchmarks.headline import headline, to_markdown
from compress.cli.main import main


def _entry(name, role, p50, size, value, retention, precision="fp32", b32=None, session=None):
    points = [{"batch": 1, "latency_ms": {"p50": p50, "throughput": 1000 / p50}}]
    if b32 is not None:
        points.append({"batch": 32, "latency_ms": {"p50": b32, "throughput": 32000 / b32}})
    return {"name": name, "role": role, "target": "local", "status": "ok", "format": "onnx", "precision": precision,
            "size_mb": size, "latency_ms": {"p50": p50, "p90": p50 * 1.2}, "quality": {"value": value},
            "retention": retention, "points": points, "end_to_end": {"latency_ms": {"p50": p50 * 1.3}},
            "session_memory": {"session_mb": session} if session else None}


def _run(tmp_path, winner_p50=1.0, winner_b32=10.0):
    report = {"schema_version": 1, "data": {"metric": "spearman", "rows": 10}, "devices": {"local": {"cpu": "AMD EPYC"}}, "models": [
        _entry("teacher", "teacher", 12.0, 90.0, 0.8, 1.0, b32=300.0),
        _entry("optimum-onnx-fused", "baseline", 5.0, 90.0, 0.8, 1.0, b32=200.0, session=140.0),
        _entry("optimum-int8-dynamic", "baseline", 3.0, 23.0, 0.79, 0.99, "int8", b32=30.0, session=50.0),
        _entry("search-winner (d3-p50/student-int8-dynamic)", "variant", winner_p50, 10.0, 0.78, 0.975, "int8",
               b32=winner_b32, session=30.0)]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "02-search").mkdir(exist_ok=True)
    (tmp_path / "02-search" / "candidates.json").write_text(json.dumps({
        "winner": "d3-p50/student-int8-dynamic",
        "candidates": [{"name": "d3-p50/student-int8-dynamic", "retention": 0.99},
                       {"name": "d3-p00/student-int8-dynamic", "retention": 1.0}]}))
    return headline(tmp_path)


def test_headline_checks_issue_17s_targets_from_one_bench_stage(tmp_path):
    h = _run(tmp_path)
    assert h["speedup_vs_teacher"] == pytest.approx(12.0) and h["speedup_vs_baseline"] == pytest.approx(3.0)
    assert h["throughput_vs_baseline"] == pytest.approx(3.0) and h["sweep_batch"] == 32
    assert h["size_fraction"] == pytest.approx(10 / 90) and h["session_fraction"] == pytest.approx(30 / 140)
    assert h["dev_retention"] == 0.99 and h["from_text_ms"] == pytest.approx(1.3)
    assert all(h["checks"].values())
    md = to_markdown([h])
    assert "97.5 % (dev 99.0 %) ✔" in md and "12.00× ✔" in md and "1/4.67 ✔" in md and "✘" not in md
    h = _run(tmp_path, winner_p50=1.25, winner_b32=12.0)  # 9.6x the teacher, 2.4x Optimum INT8, 2.5x at batch 32
    assert not h["checks"]["speedup_vs_teacher"] and not h["checks"]["speedup_vs_baseline"]
    assert not h["checks"]["throughput_vs_baseline"] and h["checks"]["retention"] and h["checks"]["size_fraction"]


def test_bench_headline_command_prints_and_writes_the_tables(tmp_path, capsys):
    report = {"schema_version": 1, "data": {"metric": "accuracy", "rows": 4}, "models": [
        _entry("teacher", "teacher", 10.0, 90.0, 0.9, 1.0),
        _entry("search-winner (d3/student-int8)", "variant", 1.0, 10.0, 0.88, 0.98, "int8")]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    main(["bench", "headline", str(tmp_path), "--out", str(tmp_path / "headline.md")])  # returns: exit 0
    printed = capsys.readouterr().out
    assert "10.00× ✔" in printed and "| batch-1 p50 vs Optimum INT8 | ≥ 3× | – ✘ |" in printed
    assert (tmp_path / "headline.md").read_text().strip() == printed.strip()


def test_bench_headline_without_a_search_winner_is_a_one_line_error(tmp_path, capsys):
    report = {"schema_version": 1, "data": {"metric": "accuracy", "rows": 4},
              "models": [_entry("teacher", "teacher", 10.0, 90.0, 0.9, 1.0)]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(SystemExit) as exc:
        main(["bench", "headline", str(tmp_path)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "no search-winner entry (run a search stage before bench)" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["bench", "headline", str(tmp_path / "missing")])
    assert exc.value.code == 1 and "no report.json at" in capsys.readouterr().err


def test_headline_lists_the_winners_model_in_every_runtime_with_ratios_to_optimum_int8(tmp_path):
    _run(tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    ov = _entry("search-winner-openvino (d3-p50/student-openvino-int8)", "variant", 0.75, 12.0, 0.78, 0.97, "int8",
                b32=7.5, session=60.0)
    lite = _entry("search-winner-litert (d3-p50/student-litert-int8)", "variant", 1.5, 11.0, 0.78, 0.97, "int8",
                  b32=40.0, session=20.0)
    ov["format"], lite["format"] = "openvino", "litert"
    report["models"] += [ov, lite]
    (tmp_path / "report.json").write_text(json.dumps(report))
    h = headline(tmp_path)
    rows = {r["runtime"]: r for r in h["runtimes"]}
    assert list(rows) == ["onnxruntime", "openvino", "litert"]
    assert rows["openvino"]["speedup_vs_baseline"] == pytest.approx(3.0 / 0.75)
    assert rows["openvino"]["throughput_vs_baseline"] == pytest.approx(30.0 / 7.5)
    assert rows["litert"]["speedup_vs_baseline"] == pytest.approx(2.0) and rows["litert"]["session_mb"] == 20.0
    md = to_markdown([h])
    assert "| search-winner-openvino (d3-p50/student-openvino-int8) | openvino | int8 | 12.0 | 97.0 % | 0.75 | 4267 | 60 " \
           "| 4.00× | 4.00× |" in md
    assert "| optimum-int8-dynamic | onnx | int8 | 23.0 | 99.0 % | 3.00 | 1067 | 50 | – | – |" in md
