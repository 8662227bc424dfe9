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


def _entry(name, role, p50, size, value, retention, precision="fp32"):
    return {"name": name, "role": role, "target": "local", "status": "ok", "format": "onnx", "precision": precision,
            "size_mb": size, "latency_ms": {"p50": p50, "p90": p50 * 1.2}, "quality": {"value": value},
            "retention": retention}


def test_headline_ratios_and_checks(tmp_path):
    report = {"data": {"metric": "spearman", "rows": 10}, "models": [
        _entry("teacher", "teacher", 20.0, 90.0, 0.8, 1.0),
        _entry("optimum-int8-dynamic", "baseline", 6.0, 23.0, 0.79, 0.99, "int8"),
        _entry("search-winner (d3-p50/student-int8-dynamic)", "variant", 2.0, 14.0, 0.78, 0.975, "int8")]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    h = headline(tmp_path)
    assert h["speedup_vs_teacher"] == pytest.approx(10.0) and h["speedup_vs_baseline"] == pytest.approx(3.0)
    assert h["size_fraction"] == pytest.approx(14 / 90)
    assert all(h["checks"].values())
    md = to_markdown([h])
    assert "10.00×" in md and "3.00×" in md and "✘" not in md
    report["models"][2]["latency_ms"]["p50"] = 4.0
    (tmp_path / "report.json").write_text(json.dumps(report))
    h = headline(tmp_path)
    assert not h["checks"]["speedup_vs_teacher"] and not h["checks"]["speedup_vs_baseline"] and h["checks"]["retention"]


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
    assert "10.00×" in proc.stdout
