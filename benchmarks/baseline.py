"""The baselines a user gets from Optimum alone: the teacher exported by optimum (``optimum-onnx``), fused by
``optimum-cli onnxruntime optimize -O2`` (``optimum-onnx-fused``: ONNX Runtime fp32 at its best), quantized
by ``optimum-cli onnxruntime quantize`` (``optimum-int8-dynamic``: dynamic INT8, the CPU's profile, per-tensor
as the CLI defaults), and statically quantized with ``ORTQuantizer.fit`` + ``quantize`` (``optimum-int8-static``:
the CPU's profile with ``is_static=True``, min-max ranges from calibration text; the CLI has no static mode).

Measured in the same bench run as edgepress's variants, so the ratios compare like with like.
"""

from __future__ import annotations

from pathlib import Path

from compress.core.errors import EdgepressError
from compress.quantize.graph import quiet
from compress.tasks import TASKS, TaskTable

OPTIMUM_TASK = TaskTable("optimum_task")
BASELINES = ("optimum-onnx", "optimum-onnx-fused", "optimum-int8-dynamic", "optimum-int8-static")
CALIBRATION_ROWS = 100  # ORTQuantizer.get_calibration_dataset's default num_samples
STATIC_TASKS = tuple(n for n, s in TASKS.items() if s.static_calibration)  # calibration from sentences (pairs)


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

    if OPTIMUM_TASK.get(task) is None:
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


def calibration_dataset(tokenizer_dir: Path, texts: list[str], pairs: list[str] | None, max_length: int,
                        input_names: list[str], seed: int = 0) -> "datasets.Dataset":
    """``CALIBRATION_ROWS`` seeded rows of the texts, tokenized unpadded (one row per calibration batch), only
    the model's input columns: what ``ORTQuantizer.fit`` reads."""
    import random

    import datasets

    from compress.model.loading import load_tokenizer

    if not texts:
        raise EdgepressError("optimum-int8-static needs calibration text; the training split is empty")
    rows = sorted(random.Random(seed).sample(range(len(texts)), min(CALIBRATION_ROWS, len(texts))))
    tok = load_tokenizer(str(tokenizer_dir))
    first = [texts[i] for i in rows]
    enc = tok(first, [pairs[i] for i in rows], truncation=True, max_length=max_length) if pairs is not None \
        else tok(first, truncation=True, max_length=max_length)
    return datasets.Dataset.from_dict({k: enc[k] for k in input_names if k in enc})


def static_quantize_with_optimum(onnx_dir: Path, out_dir: Path, calibration: "datasets.Dataset") -> Path:
    """Optimum's static INT8: ``ORTQuantizer.fit`` (min-max calibration) then ``quantize`` with the CPU profile's
    ``is_static=True`` config, per-tensor as the dynamic baseline."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig, AutoQuantizationConfig

    qconfig = getattr(AutoQuantizationConfig, optimum_profile())(is_static=True, per_channel=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    augmented = out_dir / "augmented_model.onnx"
    with quiet("optimum"):
        quantizer = ORTQuantizer.from_pretrained(str(onnx_dir), file_name="model.onnx")
        ranges = quantizer.fit(dataset=calibration, calibration_config=AutoCalibrationConfig.minmax(calibration),
                               onnx_augmented_model_name=augmented,
                               operators_to_quantize=qconfig.operators_to_quantize)
        quantizer.quantize(save_dir=str(out_dir), quantization_config=qconfig, calibration_tensors_range=ranges)
    augmented.unlink(missing_ok=True)
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


def build_baselines(names: list[str], teacher_dir: Path, task: str, out_dir: Path,
                    calibration: tuple[list[str], list[str] | None] | None = None,
                    max_length: int = 128) -> dict[str, Path]:
    """Build each requested baseline under ``out_dir``; returns name -> ONNX file.

    ``calibration``: (texts, pairs or None) the static baseline calibrates on (the training split).
    """
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise EdgepressError(f"unknown baseline '{unknown[0]}'; known: {', '.join(BASELINES)}")
    if not names:
        return {}
    if "optimum-int8-static" in names and not TASKS[task].static_calibration:
        raise EdgepressError(f"baseline optimum-int8-static calibrates on sentences ({', '.join(STATIC_TASKS)}), "
                             f"not {task}: remove it from bench.baselines")
    if "optimum-int8-static" in names and calibration is None:
        raise EdgepressError("baseline optimum-int8-static needs calibration text (the training split)")
    onnx_dir = out_dir / "optimum-onnx"
    built = {"optimum-onnx": export_with_optimum(teacher_dir, task, onnx_dir)}
    if "optimum-onnx-fused" in names:
        built["optimum-onnx-fused"] = optimize_with_optimum(onnx_dir, out_dir / "optimum-onnx-fused")
    if "optimum-int8-dynamic" in names:
        built["optimum-int8-dynamic"] = quantize_with_optimum(onnx_dir, out_dir / "optimum-int8-dynamic")
    if "optimum-int8-static" in names:
        from benchmarks.sessions import input_names, open_session

        names_in = input_names(open_session(built["optimum-onnx"]))
        rows = calibration_dataset(teacher_dir, calibration[0], calibration[1], max_length, names_in)
        built["optimum-int8-static"] = static_quantize_with_optimum(onnx_dir, out_dir / "optimum-int8-static", rows)
    return {n: built[n] for n in names}
