"""The export stage reads the upstream model and declares outputs, variants and metrics."""

from __future__ import annotations

import json

from compress.config import RunConfig
from compress.run.pipeline import stage_inputs
from compress.run.stages import StageRecord


def test_run_stage_writes_onnx_tokenizer_variants_and_bundle(tiny_model_dir, tmp_path):
    from export.stage import run_stage

    model_dir = tiny_model_dir("bert", "embedding")
    upstream = StageRecord("distill", model_dir.parent, {"model": model_dir.name}, {}, [])
    cfg = RunConfig.model_validate({"task": "embedding", "teacher": {"model": str(model_dir), "max_length": 64},
                                    "data": {"train": "builtin:pydoc"},
                                    # the files promise export.max_length (None: the model's own max length,
                                    # not teacher.max_length, which is the training truncation)
                                    "export": {"formats": ["onnx", "torchscript"], "bundle": True, "max_length": 64}})
    out = tmp_path / "03-export"
    out.mkdir()
    res = run_stage(cfg, stage_inputs(cfg, tmp_path, [upstream]), out)
    assert res.outputs["onnx"] == "model.onnx" and (out / "model.onnx").is_file()
    assert (out / res.outputs["tokenizer"] / "tokenizer.json").is_file()
    assert {(v.name, v.format, v.path) for v in res.variants} == {("student", "onnx", "model.onnx"),
                                                                  ("student-torchscript", "torchscript", "model.pt")}
    assert res.metrics["max_abs_diff"] < 1e-4 and res.metrics["student"]["max_length"] == 64
    assert res.metrics["student"]["size_bytes"]["model.onnx"] == (out / "model.onnx").stat().st_size
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert manifest["max_sequence_length"] == 64 and len(manifest["models"]) == 2
    json.dumps(res.metrics)  # stage.json must be able to hold the metrics
