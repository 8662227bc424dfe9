"""The quantize stage scores the export stage's runtime files on the guard's rows, in their own runtimes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.cli.main import main


def _config(tiny_model_dir, shared_data, tmp_path) -> dict:
    """distill (1 layer, 2 steps) -> export [onnx, executorch] -> quantize (dynamic INT8) on 64 STS-B rows."""
    from tests.tiny import sts_run_config

    config = sts_run_config(tiny_model_dir("bert", "embedding"), shared_data, tmp_path, name="rt",
                            stages=["distill", "export", "quantize"], export={"formats": ["onnx", "executorch"]},
                            quantize={"methods": ["dynamic"]})
    config["data"]["max_eval_samples"] = 24
    return config


def test_the_pte_is_scored_on_the_eval_rows_beside_the_int8_file(tiny_model_dir, shared_data, tmp_path):
    pytest.importorskip("executorch.runtime", reason="pip install 'edgepress[executorch]'")
    from compress.quantize.report import QuantizeReport, validate_report

    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(_config(tiny_model_dir, shared_data, tmp_path)))  # JSON is YAML
    main(["run", str(config)])
    report_file = next((tmp_path / "runs" / "rt").rglob("quantize_report.json"))
    data = json.loads(report_file.read_text())
    validate_report(data)
    typed = QuantizeReport.from_dict(data)
    assert typed.to_dict()["runtimes"] == data["runtimes"]
    (pte,) = typed.runtimes
    assert pte.format == "executorch" and pte.precision == "fp32" and pte.scored
    assert (report_file.parent / pte.path).resolve().name == "model.pte"
    assert (report_file.parent / pte.path).resolve().parent.name.endswith("export")
    # the guard's terms: STS-B rows with gold scores -> spearman, retention against the fp32 ONNX file
    assert pte.metric == "spearman" and pte.basis == "spearman"
    assert pte.fp32_value == pytest.approx(data["eval"]["spearman"], abs=1e-6)
    assert pte.value == pytest.approx(pte.fp32_value, abs=2e-3) and pte.retention == pytest.approx(1.0, abs=1e-2)
    assert pte.fidelity == "fidelity_cosine" and pte.fidelity_value > 0.9999  # fp32 .pte vs fp32 ONNX
    assert pte.retention_floor == typed.methods["dynamic"].retention_floor and pte.meets_floor is True
    stage = json.loads((report_file.parent / "stage.json").read_text())
    assert stage["metrics"]["runtimes"] == data["runtimes"]


def test_a_file_no_runtime_here_can_run_is_listed_with_the_reason(tmp_path):
    """Core ML predicts only on Apple devices: the file is listed, not scored, with the registry's reason."""
    from benchmarks.evalset import EvalBatches
    from compress.quantize.evaluate import RuntimeFile, score_runtime
    from compress.quantize.report import RuntimeScore, load_schema

    package = tmp_path / "02-export" / "coreml" / "model.mlpackage"
    package.mkdir(parents=True)
    ev = EvalBatches.__new__(EvalBatches)  # never read: nothing runs a file that has no runtime here
    entry = score_runtime(RuntimeFile("coreml", "fp16", package), ev, 0.99, tmp_path / "03-quantize")
    assert entry["scored"] is False and entry["path"] == str(Path("..") / "02-export" / "coreml" / "model.mlpackage")
    assert "Core ML" in entry["reason"] and "\n" not in entry["reason"]
    assert RuntimeScore.from_dict(entry).to_dict() == entry
    import jsonschema

    schema = load_schema()
    jsonschema.validate(entry, {**schema["$defs"]["runtime_score"], "$defs": schema["$defs"]})
    with pytest.raises(jsonschema.ValidationError):  # a scored entry must carry its numbers
        jsonschema.validate({**entry, "scored": True}, {**schema["$defs"]["runtime_score"], "$defs": schema["$defs"]})
