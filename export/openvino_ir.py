"""OpenVINO IR (.xml + .bin): the checked ONNX file converted by ``openvino.convert_model``, plus NNCF INT8 on the IR.

Both files are loaded back with ``openvino.Core`` on CPU and checked: the fp32 IR against PyTorch at the fp32 export
tolerance, the INT8 IR with the task's fidelity (floor 0.98). On CPUs with bf16 (AVX512-BF16, AMX) OpenVINO runs
fp32 models in bf16 unless told otherwise, so the checks compile with ``INFERENCE_PRECISION_HINT`` f32: the files
are judged, not the CPU's default shortcut.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from compress.model.formats import install_hint
from export.errors import ExportError, FormatUnavailableError

if TYPE_CHECKING:
    from export.core import Prepared
    from export.parity import Runner
    from export.core import Written

OPENVINO_HINT = install_hint("openvino")
INT8_NAME = "openvino_model_int8.xml"


def openvino_ready() -> None:
    """Refuse in one line, before any work, when openvino (or NNCF, which makes the INT8 IR) is missing."""
    for module in ("openvino", "nncf"):
        if importlib.util.find_spec(module) is None:
            raise FormatUnavailableError(f"cannot write the OpenVINO IR: {module} is not installed; {OPENVINO_HINT}")


def ir_runner(path: Path, output_names: list[str]) -> "Runner":
    """Run an IR on CPU in f32 (dynamic shapes), returning outputs in ``output_names`` order."""
    import openvino as ov
    import openvino.properties.hint as hints

    compiled = ov.Core().compile_model(str(path), "CPU", {hints.inference_precision: ov.Type.f32})
    outputs = [compiled.output(n) for n in output_names]

    def run(batch: dict) -> list:
        got = compiled({i.get_any_name(): batch[i.get_any_name()] for i in compiled.inputs})
        return [got[o] for o in outputs]

    return run


def write_openvino(prep: "Prepared", onnx_path: Path, path: Path, done: "Written") -> None:
    """Write the fp32 IR at ``path`` and the NNCF INT8 IR beside it; check both after loading them back."""
    import openvino as ov

    from benchmarks.runners.openvino_runner import reason

    openvino_ready()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = ov.convert_model(str(onnx_path))
        ov.save_model(model, str(path), compress_to_fp16=False)
    except Exception as exc:  # noqa: BLE001 - surface the converter's reason in one line
        raise ExportError(f"OpenVINO could not convert '{onnx_path}': {reason(exc)}") from exc
    done.metrics["parity_openvino"] = prep.check(f"OpenVINO IR '{path.name}'", ir_runner(path, prep.output_names))
    int8 = path.with_name(INT8_NAME)
    quantize_ir(prep, path, int8)
    done.precisions.setdefault("openvino", {})["int8"] = int8
    done.metrics["quantized_openvino_int8"] = prep.check_quantized(f"OpenVINO INT8 IR '{int8.name}'",
                                                                   ir_runner(int8, prep.output_names))
    done.metrics["quantized_openvino_int8"]["calibration"] = prep.calibration_source()


def quantize_ir(prep: "Prepared", src: Path, dst: Path) -> None:
    """NNCF post-training INT8 of the IR ``src`` (``ModelType.TRANSFORMER``: NNCF's transformer patterns and
    SmoothQuant), calibrated on ``prep``'s real-text batches, saved at ``dst``."""
    import nncf
    import openvino as ov

    from benchmarks.runners.openvino_runner import reason

    batches = prep.calibration_batches()
    dataset = nncf.Dataset(batches, lambda b: {n: b[n] for n in prep.input_names})
    try:
        quantized = nncf.quantize(ov.Core().read_model(str(src)), dataset, model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(batches))
        ov.save_model(quantized, str(dst), compress_to_fp16=False)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"NNCF INT8 quantization of '{src}' failed: {reason(exc)}") from exc

