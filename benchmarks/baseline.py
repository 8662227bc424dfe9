"""The baselines a user gets from Optimum alone: the teacher exported by optimum (``optimum-onnx``), fused by
``optimum-cli onnxruntime optimize -O2`` (``optimum-onnx-fused``: ONNX Runtime fp32 at its best), and quantized
by ``optimum-cli onnxruntime quantize`` (``optimum-int8-dynamic``: dynamic INT8, the CPU's profile, per-tensor
as the CLI defaults).

Measured in the same bench run as edgepress's variants, so the ratios compare like with like.
"""

from __future__ import annotations

from pathlib import Path

from compress.errors import EdgepressError
from compress.quantize.graph import quiet

OPTIMUM_TASK = {"embedding": "feature-extraction", "classification": "text-classification",
                "regression": "text-classification", "mlm": "fill-mask", "token-classification": "token-classification",
                "question-answering": "question-answering"}
BASELINES = ("optimum-onnx", "optimum-onnx-fused", "optimum-int8-dynamic")


def optimum_profile() -> str:
    """The ``optimum-cli onnxruntime quantize`` flag a user would pick for this CPU (--arm64/--avx2/...)."""
    from compress.quantize.cpu import detect_cpu

    cpu = detect_cpu()
    if cpu.is_arm:
        return "arm64"
    if cpu.avx512 and cpu.vnni:
        return "avx512_vnni"
    if cpu.avx512:
        return "avx512"
    return "avx2"


def export_with_optimum(teacher_dir: Path, task: str, out_dir: Path) -> Path:
    """``optimum-cli export onnx --model TEACHER --task ... --library-name transformers OUT`` as a call."""
    from optimum.exporters.onnx import main_export

    if task not in OPTIMUM_TASK:
        raise EdgepressError(f"no Optimum baseline for task '{task}'; tasks: {', '.join(OPTIMUM_TASK)}")
    with quiet("optimum"):
        main_export(str(teacher_dir), output=str(out_dir), task=OPTIMUM_TASK[task], library_name="transformers",
                    local_files_only=True, do_validation=True)
    model = out_dir / "model.onnx"
    if not model.is_file():
        raise EdgepressError(f"optimum's exporter wrote no model.onnx into '{out_dir}'")
    return model


def quantize_with_optimum(onnx_dir: Path, out_dir: Path) -> Path:
    """``optimum-cli onnxruntime quantize --onnx_model DIR --<profile> -o OUT`` as a call (dynamic, per-tensor)."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    qconfig = getattr(AutoQuantizationConfig, optimum_profile())(is_static=False, per_channel=False)
    with quiet("optimum"):
        ORTQuantizer.from_pretrained(str(onnx_dir), file_name="model.onnx").quantize(
            save_dir=str(out_dir), quantization_config=qconfig)
    model = out_dir / "model_quantized.onnx"
    if not model.is_file():
        raise EdgepressError(f"optimum's quantizer wrote no model_quantized.onnx into '{out_dir}'")
    return model


def optimize_with_optimum(onnx_dir: Path, out_dir: Path) -> Path:
    """``optimum-cli onnxruntime optimize --onnx_model DIR -O2 -o OUT`` as a call (ORT's fusions, fp32, CPU)."""
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    with quiet("optimum"):
        ORTOptimizer.from_pretrained(str(onnx_dir), file_names=["model.onnx"]).optimize(
            optimization_config=AutoOptimizationConfig.O2(), save_dir=str(out_dir))
    model = out_dir / "model_optimized.onnx"
    if not model.is_file():
        raise EdgepressError(f"optimum's optimizer wrote no model_optimized.onnx into '{out_dir}'")
    return model


def build_baselines(names: list[str], teacher_dir: Path, task: str, out_dir: Path) -> dict[str, Path]:
    """Build each requested baseline under ``out_dir``; returns name -> ONNX file."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise EdgepressError(f"unknown baseline '{unknown[0]}'; known: {', '.join(BASELINES)}")
    if not names:
        return {}
    onnx_dir = out_dir / "optimum-onnx"
    built = {"optimum-onnx": export_with_optimum(teacher_dir, task, onnx_dir)}
    if "optimum-onnx-fused" in names:
        built["optimum-onnx-fused"] = optimize_with_optimum(onnx_dir, out_dir / "optimum-onnx-fused")
    if "optimum-int8-dynamic" in names:
        built["optimum-int8-dynamic"] = quantize_with_optimum(onnx_dir, out_dir / "optimum-int8-dynamic")
    return {n: built[n] for n in names}
