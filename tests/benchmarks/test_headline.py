"""experiments/headline.py: ratios and target checks from a report.json (a lab script, outside the packages)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "headline.py"
_spec = importlib.util.spec_from_file_location("experiments_headline", SCRIPT)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
headline, to_markdown = _mod.headline, _mod.to_markdown


def _entry(name, role, p50, size, value, retention, precision="fp32", b32=None, session=None):
    points = [{"batch": 1, "latency_ms": {"p50": p50, "throughput": 1000 / p50}}]
    if b32 is not None:
        points.append({"batch": 32, "latency_ms": {"p50": b32, "throughput": 32000 / b32}})
    return {"name": name, "role": role, "target": "local", "status": "ok", "format": "onnx", "precision": precision,
            "size_mb": size, "latency_ms": {"p50": p50, "p90": p50 * 1.2}, "quality": {"value": value},
            "retention": retention, "points": points, "end_to_end": {"latency_ms": {"p50": p50 * 1.3}},
            "session_memory": {"session_mb": session} if session else None}


def _run(tmp_path, winner_p50=1.0, winner_b32=10.0):
    report = {"data": {"metric": "spearman", "rows": 10}, "devices": {"local": {"cpu": "AMD EPYC"}}, "models": [
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


def test_headline_runs_as_a_script_outside_the_packages(tmp_path):
    import benchmarks

    assert not (Path(benchmarks.__file__).parent / "headline.py").exists()
    report = {"data": {"metric": "accuracy", "rows": 4}, "models": [
        _entry("teacher", "teacher", 10.0, 90.0, 0.9, 1.0),
        _entry("search-winner (d3/student-int8)", "variant", 1.0, 10.0, 0.88, 0.98, "int8")]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "10.00× ✔" in proc.stdout and "| batch-1 p50 vs Optimum INT8 | ≥ 3× | – ✘ |" in proc.stdout
