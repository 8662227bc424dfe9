"""The quantize pipeline stage: reads upstream onnx + tokenizer, writes variants and stage metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.config import RunConfig, load_config
from compress.quantize.report import QuantizeReport, validate_report
from compress.quantize.stage import run_stage
from compress.run.pipeline import stage_inputs
from compress.run.stages import StageRecord
from tests.quantize.helpers import TEXTS, export_tiny, mean_cosine, run_onnx
from tests.quantize.test_quantize import unreachable_floor  # noqa: F401  (fixture)


@pytest.fixture
def exported(tiny_model_dir, tmp_path) -> tuple[Path, Path]:
    """A tiny BERT embedding model folder and an export stage folder holding its model.onnx."""
    model_dir = tiny_model_dir("bert", "embedding")
    export_dir = tmp_path / "03-export"
    export_dir.mkdir()
    export_tiny(model_dir, "embedding", export_dir / "model.onnx")
    return model_dir, export_dir


def test_stage_writes_variants_and_metrics(exported, tmp_path):
    from transformers import AutoTokenizer

    model_dir, export_dir = exported
    data = tmp_path / "pairs.tsv"
    rows = [(TEXTS[i % 8], TEXTS[(i + 3) % 8], f"{(i % 5) + 0.5:.1f}") for i in range(40)]
    data.write_text("sentence1\tsentence2\tscore\n" + "".join("\t".join(r) + "\n" for r in rows))
    cfg = RunConfig.model_validate({
        "teacher": {"model": str(model_dir), "max_length": 32},
        "data": {"train": str(data), "text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "score",
                 "eval_fraction": 0.25},
        "quantize": {"methods": ["dynamic", "int4"], "guard": {"retention_floor": 0.9},
                     "latency": {"runs": 3, "batch_size": 2}},
    })
    # tokenizer comes from the upstream model folder (no export 'tokenizer' output here)
    inputs = stage_inputs(cfg, tmp_path, [StageRecord("distill", model_dir, {"model": "."}, {}, []),
                                    StageRecord("export", export_dir, {"onnx": "model.onnx"}, {}, [])])
    out = tmp_path / "04-quantize"
    result = run_stage(cfg, inputs, out)
    names = [v.name for v in result.variants]
    assert names == ["student-int8-dynamic", "student-int4"]
    assert {v.precision for v in result.variants} == {"int8", "int4"}
    for v in result.variants:
        assert (out / v.path).is_file()
    m = result.metrics
    assert m["eval"]["kind"] == "sts" and m["eval"]["rows"] == 10  # 25 % of 40 rows, scored pairs -> Spearman
    assert m["methods"]["dynamic"]["attempts"][0]["basis"] in {"spearman", "fidelity_cosine"}
    assert m["methods"]["dynamic"]["latency"]["shape"] == [2, 32]
    if m["recommended"]["path"]:
        assert result.outputs["onnx_int8"] == "model.int8-dynamic.onnx"
    else:
        assert "onnx_int8" not in result.outputs and m["methods"]["dynamic"]["flags"]
    assert result.outputs["onnx_int4"] == "model.int4.onnx"
    written = json.loads((out / result.outputs["report"]).read_text())
    validate_report(written)  # the file is stage.json's metrics, schema-valid
    assert written == m and QuantizeReport.from_dict(m).to_dict() == m
    tok = AutoTokenizer.from_pretrained(model_dir)
    ref = run_onnx(export_dir / "model.onnx", tok, TEXTS, "sentence_embedding")
    got = run_onnx(out / "model.int8-dynamic.onnx", tok, TEXTS, "sentence_embedding")
    assert mean_cosine(ref, got) >= 0.99


def test_stage_runs_qat_when_nncf_ptq_misses_the_floor(exported, tmp_path, unreachable_floor):
    """Under an impossible floor NNCF PTQ fails, so QAT trains the upstream PyTorch student against the teacher."""
    model_dir, export_dir = exported
    data = tmp_path / "sentences.tsv"
    data.write_text("sentence\n" + "".join(f"{TEXTS[i % 8]} {i}\n" for i in range(40)))
    cfg = RunConfig.model_validate({
        "teacher": {"model": str(model_dir), "max_length": 32},
        "data": {"train": str(data), "text_column": "sentence", "eval_fraction": 0.25},
        "distill": {"loss": {"cos": 1.0, "embed_mse": 1.0}},
        "quantize": {"methods": ["qat", "nncf"], "calibration_samples": 8, "guard": {"retention_floor": 1.0, "fallbacks": False},
                     "qat": {"max_steps": 2, "batch_size": 4}, "latency": {"runs": 3, "batch_size": 2}},
    })
    inputs = stage_inputs(cfg, tmp_path, [StageRecord("distill", model_dir, {"model": "."}, {}, []),
                                    StageRecord("export", export_dir, {"onnx": "model.onnx"}, {}, [])])
    result = run_stage(cfg, inputs, tmp_path / "04-quantize")
    m = result.metrics
    assert list(m["methods"]) == ["nncf", "qat"] and m["skipped"] == {}
    assert m["methods"]["qat"]["attempts"][0]["qat"]["steps"] == 2
    assert "student-int8-qat" in [v.name for v in result.variants]
    assert (tmp_path / "04-quantize" / "model.int8-qat.onnx").is_file()


def test_stage_refuses_qat_without_an_upstream_student(exported, tmp_path):
    from compress.core.errors import EdgepressError

    model_dir, export_dir = exported
    data = tmp_path / "sentences.tsv"
    data.write_text("sentence\n" + "".join(f"{t}\n" for t in TEXTS))
    cfg = RunConfig.model_validate({"teacher": {"model": str(model_dir)}, "quantize": {"methods": ["qat"]},
                                    "data": {"train": str(data), "text_column": "sentence"}})
    inputs = stage_inputs(cfg, tmp_path, [StageRecord("export", export_dir, {"onnx": "model.onnx", "tokenizer": str(model_dir)},
                                                {}, [])])
    with pytest.raises(EdgepressError, match="put distill"):
        run_stage(cfg, inputs, tmp_path / "04-quantize")


def test_a_bare_onnx_file_without_a_tokenizer_is_refused_not_fed_the_teachers(tmp_path):
    """quantize takes the export's tokenizer, the model folder's, or one beside the file; never the configured
    teacher's, whose token ids could belong to another vocabulary."""
    from compress.core.errors import EdgepressError
    from compress.quantize.stage import _tokenizer_source

    onnx = tmp_path / "alone" / "model.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"onnx")
    cfg = load_config(None, base={"teacher": {"model": "packaged:minilm-l6"}, "data": {"train": "builtin:pydoc"}})
    with pytest.raises(EdgepressError, match="pass --tokenizer FOLDER"):
        _tokenizer_source(stage_inputs(cfg, tmp_path, given={"onnx": onnx}))
    (onnx.parent / "tokenizer.json").write_text("{}")
    assert _tokenizer_source(stage_inputs(cfg, tmp_path, given={"onnx": onnx})) == str(onnx.parent)
