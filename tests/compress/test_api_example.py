"""README's 'Python API' block, run as written on a tiny model; the facade's results are typed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny import make_tiny_model

README = Path(__file__).resolve().parents[2] / "README.md"


def test_import_compress_stays_light():
    code = ("import sys, compress.api; from compress.api import run, finetune, distill, prune, export, quantize, bench\n"
            "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'benchmarks') if m in sys.modules]\n"
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    from compress.api import BenchResult, StageRun

    model = make_tiny_model(tmp_path / "student", head="embedding")
    block = re.search(r"<!-- api-example -->.*?```python\n(.*?)```\s*<!-- /api-example -->", README.read_text(),
                      re.S).group(1)
    assert '"runs/notebook/student"' in block
    monkeypatch.chdir(tmp_path)  # the example's runs/notebook/* folders land here
    namespace: dict = {}
    exec(compile(block.replace('"runs/notebook/student"', repr(str(model))), "README.md", "exec"), namespace)
    onnx, int8, result = namespace["onnx"], namespace["int8"], namespace["result"]
    assert isinstance(onnx, StageRun) and onnx["onnx"].is_file() and onnx["tokenizer"].is_dir()
    assert isinstance(int8, StageRun) and (int8.out_dir / int8.metrics["methods"]["dynamic"]["path"]).is_file()
    assert isinstance(result, BenchResult)
    fp32, q = result.entry("fp32"), result.entry("int8")
    assert fp32["status"] == q["status"] == "ok" and fp32["retention"] == pytest.approx(1.0)
    assert 0.0 < q["retention"] <= 1.0 + 1e-6 and q["size_mb"] < fp32["size_mb"]
    out = capsys.readouterr().out
    assert "INT8 retention" in out and "| int8 | onnx/int8 |" in out


def test_verbs_stay_callable_after_their_subpackages_are_imported():
    """compress.distill / .prune / .quantize are subpackages: importing them must not shadow the verbs."""
    import compress.distill.engine  # noqa: F401
    import compress.prune.api  # noqa: F401
    import compress.quantize.api  # noqa: F401
    from compress.api import distill, prune, quantize

    assert all(callable(f) and f.__module__ == "compress.api" for f in (distill, prune, quantize))


def test_bench_without_eval_data_times_the_seq_sweep(tmp_path, monkeypatch):
    """Realistic lengths need eval rows; without them ``bench`` measures the fixed lengths instead of failing."""
    from compress.api import bench, export

    model = make_tiny_model(tmp_path / "student", head="embedding")
    onnx = export(model, tmp_path / "onnx", task="embedding")
    result = bench({"fp32": onnx["onnx"]}, task="embedding", tokenizer=onnx["tokenizer"], min_runs=3, warmup=1,
                   min_seconds=0.0, seq_lens=[8])
    assert result.entry("fp32")["status"] == "ok"
