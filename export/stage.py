"""The ``export`` pipeline stage: the latest upstream model -> model.onnx (+ other formats), parity-checked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from compress.run.stages import StageInputs, StageResult, Variant, teacher_source

if TYPE_CHECKING:
    from compress.config import RunConfig


def optimum_layout(prep, out: Path) -> None:
    """config.json and the tokenizer beside model.onnx: optimum's ``ORTModelFor<Task>.from_pretrained(out)`` layout."""
    import shutil

    shutil.copy2(Path(prep.model_dir) / "config.json", out / "config.json")
    prep.tokenizer.save_pretrained(str(out))


def calibration_texts(cfg: "RunConfig", inputs: StageInputs, rows: int = 64) -> list[str] | None:
    """The run's first ``rows`` training sentences (from its data artifact), when a listed format calibrates its INT8
    file on text (OpenVINO's NNCF); None otherwise, and for an export on its own, which takes no data (the writer
    then calibrates on built-in sentences)."""
    from compress.model.formats import FORMAT_SPECS

    if inputs.given or not any(FORMAT_SPECS[f].calibrates for f in cfg.export.formats if f in FORMAT_SPECS):
        return None
    return list(inputs.data.splits().train.texts)[:rows]


def _export_one(model_dir: Path, cfg: "RunConfig", out: Path, bundle: bool, calibration: list[str] | None = None):
    from export.bundle import build_bundle
    from export.core import prepare
    from export.writer import write_formats

    ex = cfg.export
    prep = prepare(model_dir, cfg.task, ex.max_length, ex.atol, ex.min_cosine, rtol=ex.rtol)
    prep.calibration_texts = calibration
    written = write_formats(prep, out, ex.formats, ex.opset, ex.optimize)
    prep.tokenizer.save_pretrained(str(out / "tokenizer"))
    optimum_layout(prep, out)
    if bundle:
        build_bundle(prep, written, out / "bundle", ex.opset)
    return written


def _teacher_to_export(cfg: "RunConfig", inputs: StageInputs) -> str | None:
    """The teacher ``export.include_teacher`` exports beside the model (a fine-tuned one upstream, else
    ``teacher.model``); None when not asked. The exported model never stands in for it: an export on its own that
    names no teacher (``teacher.model: ''``) is refused in one line before any work."""
    if not cfg.export.include_teacher:
        return None
    source = teacher_source(cfg, inputs)
    if not source:
        from compress.core.errors import ConfigError

        raise ConfigError("export.include_teacher exports the teacher beside the model, but no teacher is named: add "
                          "--set teacher.model=FOLDER (or a --config that names one), or drop export.include_teacher")
    return source


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Export the latest upstream ``model`` (and the teacher if asked) to every configured format."""
    from export.heads import FILE_PRECISION, get_head
    from export.onnx_export import check_opset
    from compress.model.loading import resolve_model_path

    for fmt in cfg.export.formats:
        get_head(cfg.task, fmt)
    check_opset(cfg.export.opset)
    teacher = _teacher_to_export(cfg, inputs)
    model_dir = inputs.require("model", "export")
    written = _export_one(model_dir, cfg, out_dir, cfg.export.bundle, calibration_texts(cfg, inputs))
    result = StageResult(outputs={"onnx": "model.onnx", "tokenizer": "tokenizer"})
    if cfg.export.bundle:
        result.outputs["bundle"] = "bundle"
    result.metrics = {"student": written.metrics}
    for fmt, path in written.files.items():
        result.variants.append(Variant(f"student-{fmt}" if fmt != "onnx" else "student", fmt,
                                       str(path.relative_to(out_dir)), FILE_PRECISION.get(fmt, "fp32")))
        result.outputs.setdefault(fmt, str(path.relative_to(out_dir)))
    for fmt, by_precision in written.precisions.items():
        for precision, path in by_precision.items():
            result.variants.append(Variant(f"student-{fmt}-{precision}", fmt, str(path.relative_to(out_dir)), precision))
            result.outputs[f"{fmt}_{precision}"] = str(path.relative_to(out_dir))
    if "onnx_optimized" in written.extra:
        result.outputs["onnx_optimized"] = "model.optimized.onnx"
        result.variants.append(Variant("student-onnx-optimized", "onnx", "model.optimized.onnx", "fp32"))
    if teacher is not None:
        teacher_dir = Path(resolve_model_path(teacher))  # a folder, or a hub name
        tw = _export_one(teacher_dir, cfg, out_dir / "teacher", bundle=False)
        result.outputs["teacher_onnx"] = "teacher/model.onnx"
        result.metrics["teacher"] = tw.metrics
        for fmt, path in tw.files.items():
            result.variants.append(Variant(f"teacher-{fmt}" if fmt != "onnx" else "teacher", fmt,
                                           str(path.relative_to(out_dir)), "fp32"))
    result.metrics["max_abs_diff"] = max(m["max_abs_diff"] for k, m in result.metrics.items() if isinstance(m, dict))
    result.metrics["min_cosine"] = min(m["min_cosine"] for k, m in result.metrics.items() if isinstance(m, dict))
    result.metrics["max_rel_diff"] = max(m["max_rel_diff"] for k, m in result.metrics.items() if isinstance(m, dict))
    result.metrics["bound_used"] = max(m["bound_used"] for k, m in result.metrics.items() if isinstance(m, dict))
    return result
