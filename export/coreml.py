"""Core ML ``.mlpackage`` files (an ML Program in fp16, and its INT8-weight sibling) and what Linux can check of them.

coremltools converts on Linux but predicts only on macOS / iOS (its ``libcoremlpython`` is built for Apple
platforms). So here a package is checked without running it: the saved spec loads back; its inputs, outputs,
dtypes and shape ranges are the head's; the weights stored in the fp16 package are PyTorch's rounded to fp16;
the INT8 package's weights are int8 and dequantize to within half a quantization step of the fp16 ones, and it
runs the same compute ops as the fp16 package; each package's weights, put back into the PyTorch model run in fp16,
keep the task's fidelity above the quantized floor (an emulation of the precision, not of Core ML's kernels). On
macOS the packages are also run by Core ML and checked against PyTorch.
"""

from __future__ import annotations

import collections
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.model.formats import install_hint
from export.core import Prepared
from export.errors import ExportError, FormatUnavailableError

if TYPE_CHECKING:
    from export.core import Written

COREML_HINT = install_hint("coreml")
MAX_BATCH = 64  # the batch range written into the package's inputs (1..MAX_BATCH)
NOT_PREDICTED = "Core ML predicts only on macOS / iOS; on Linux the spec, names and shapes were checked"
# |dequantized - fp16| may reach half a step, plus the step's own fp16 rounding times the largest |int8| (127) and
# the fp16 rounding of the weight itself.
_FP16_EPS = 2.0 ** -11


def coremltools_module() -> Any:
    """coremltools, imported with its import-time notices (no macOS runtime, untested torch) kept off the console."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import coremltools
    finally:
        log.setLevel(level)
    return coremltools


def coreml_ready() -> None:
    """Refuse before any work when coremltools cannot be imported, with the install line."""
    try:
        coremltools_module()
    except ImportError as exc:
        raise FormatUnavailableError(f"cannot write Core ML (.mlpackage): coremltools cannot be imported ({exc}); "
                                     f"{COREML_HINT}") from None


def convert(prep: Prepared) -> Any:
    """The wrapper as an fp16 ML Program: int32 inputs named as the head's, batch 1..MAX_BATCH and sequence
    1..max_length (``ct.RangeDim``), float32 outputs named as the head's."""
    import numpy as np
    import torch

    from export.mobile import _trace

    ct = coremltools_module()
    example = prep.example_tensors()
    batch = ct.RangeDim(1, MAX_BATCH, default=int(example[0].shape[0]), symbol="batch")
    seq = ct.RangeDim(1, prep.max_length, default=int(example[0].shape[1]), symbol="sequence")
    inputs = [ct.TensorType(name=n, shape=(batch, seq), dtype=np.int32) for n in prep.input_names]
    outputs = [ct.TensorType(name=n, dtype=np.float32) for n in prep.output_names]
    traced = _trace(prep)
    try:
        with torch.no_grad():
            return ct.convert(traced, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                              compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS16)
    except Exception as exc:  # noqa: BLE001 - any converter failure becomes one actionable line
        raise ExportError(f"coremltools could not convert '{prep.model_dir}': {type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc


def quantize_int8(model: Any) -> Any:
    """INT8 weights (linear symmetric, one scale per output channel) of an ML Program; compute stays fp16."""
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel"))
    return cto.linear_quantize_weights(model, config=config)


def load_program(path: Path) -> tuple[Any, Any]:
    """(spec, MIL program) of a saved package, read back from disk without Core ML's runtime."""
    ct = coremltools_module()
    from coremltools.converters.mil.frontend.milproto import load as milproto

    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    program = milproto.load(spec, spec.specificationVersion, file_weights_dir=model.weights_dir)
    return spec, program


def compute_ops(program: Any) -> dict[str, int]:
    """Op-type counts of the main function, weights (``const`` / ``constexpr_*``) left out."""
    ops = program.functions["main"].operations
    return dict(sorted(collections.Counter(op.op_type for op in ops
                                           if op.op_type != "const" and not op.op_type.startswith("constexpr_"))
                       .items()))


def check_interface(prep: Prepared, spec: Any, program: Any, label: str) -> dict[str, Any]:
    """Inputs (int32, batch 1..MAX_BATCH x sequence 1..max_length), outputs (float32, PyTorch's rank and fixed
    trailing sizes) and their names, as the saved spec says; ExportError naming the first difference."""
    from coremltools.proto import FeatureTypes_pb2 as ft

    desc = spec.description
    got_in, got_out = [i.name for i in desc.input], [o.name for o in desc.output]
    if got_in != list(prep.input_names) or got_out != list(prep.output_names):
        raise ExportError(f"{label}: inputs {got_in} / outputs {got_out} differ from the head's "
                          f"{prep.input_names} / {prep.output_names}")
    want_range = [(1, MAX_BATCH), (1, prep.max_length)]
    for i in desc.input:
        arr = i.type.multiArrayType
        ranges = [(r.lowerBound, r.upperBound) for r in arr.shapeRange.sizeRanges]
        if arr.dataType != ft.ArrayFeatureType.INT32 or ranges != want_range:
            raise ExportError(f"{label}: input '{i.name}' is {ft.ArrayFeatureType.ArrayDataType.Name(arr.dataType)} "
                              f"with shape ranges {ranges}; expected INT32 with {want_range}")
    shapes = {}
    outs = program.functions["main"].outputs
    for o, var, ref in zip(desc.output, outs, prep.expected[0]):
        dtype = o.type.multiArrayType.dataType
        fixed = [d if isinstance(d, int) else None for d in var.shape]
        want = [None] * (ref.ndim - 1) + [int(ref.shape[-1])]
        if dtype != ft.ArrayFeatureType.FLOAT32 or var.name != o.name or fixed != want:
            raise ExportError(f"{label}: output '{o.name}' is {ft.ArrayFeatureType.ArrayDataType.Name(dtype)} of shape "
                              f"{fixed} (None: flexible); expected FLOAT32 of shape {want} like PyTorch's")
        shapes[o.name] = ["batch" if k == 0 else "sequence" if d is None else d for k, d in enumerate(fixed)]
    return {"inputs": {i.name: {"dtype": "int32", "shape_ranges": want_range} for i in desc.input},
            "outputs": {o.name: {"dtype": "float32", "shape": shapes[o.name]} for o in desc.output}}


def _weight_values(path: Path) -> dict[str, Any]:
    """The tensors a package stores (name -> values), read back from disk; a compressed weight is dequantized by
    coremltools' own definition of its ``constexpr_*`` op and named as the fp16 weight it replaced."""
    _, program = load_program(path)
    values = {}
    for op in program.functions["main"].operations:
        if op.op_type == "const" and getattr(op.outputs[0].val, "ndim", 0) > 0:
            values[op.name] = op.outputs[0].val
        elif op.op_type.startswith("constexpr_"):
            values[op.name.removesuffix("_quantized")] = op.materialized_val_inference()
    return values


def _torch_name(param: str) -> str:
    """The name the converter gives a PyTorch parameter's fp16 weight (``model.encoder...weight`` ->
    ``model_encoder..._weight_to_fp16``)."""
    return param.replace(".", "_") + "_to_fp16"


def check_fp16_weights(prep: Prepared, path: Path) -> dict[str, Any]:
    """Every PyTorch parameter the package stores by its converted name equals it rounded to fp16; ExportError
    past one fp16 rounding. Most parameters must be found (the names follow the module paths)."""
    import numpy as np

    stored = _weight_values(path)
    params = {_torch_name(k): v.detach().float().numpy()
              for k, v in prep.wrapper.state_dict().items() if v.is_floating_point()}
    matched, worst = 0, 0.0
    for name, ref in params.items():
        got = stored.get(name)
        if got is None or got.shape != ref.shape:
            continue
        matched += 1
        err = np.abs(got.astype(np.float32) - ref)
        bound = _FP16_EPS * np.abs(ref) + 6.0e-8  # half an fp16 ulp, with the subnormal step as a floor
        worst = max(worst, float(np.max(err / bound)) if err.size else 0.0)
    if matched < len(params) // 2:
        raise ExportError(f"Core ML package '{path.name}': only {matched} of {len(params)} PyTorch weights were found "
                          "by name in the saved package; the converter changed their layout")
    if worst > 1.0:
        raise ExportError(f"Core ML package '{path.name}': a stored weight differs from PyTorch's by {worst:.3g} fp16 "
                          "roundings; the converter changed the weights")
    return {"weights_matched": matched, "weights_in_model": len(params), "max_error_in_fp16_roundings": worst}


def check_int8_weights(fp16_path: Path, int8_path: Path) -> dict[str, Any]:
    """The INT8 package stores int8 weights with per-channel scales whose dequantized values lie within half a
    quantization step of the fp16 package's weights; ExportError otherwise."""
    import numpy as np

    fp16 = _weight_values(fp16_path)
    spec, program = load_program(int8_path)
    quantized, worst, int8_bytes = 0, 0.0, 0
    for op in program.functions["main"].operations:
        if not op.op_type.startswith("constexpr_"):
            continue
        data = op.quantized_data.val if hasattr(op, "quantized_data") else op.data.val
        scale = np.asarray(op.scale.val, dtype=np.float32)
        ref = fp16.get(op.name.removesuffix("_quantized"))
        if data.dtype != np.int8 or ref is None:
            raise ExportError(f"Core ML INT8 package '{int8_path.name}': weight '{op.name}' is {data.dtype}"
                              f"{'' if ref is not None else ' and has no fp16 original'}; expected int8")
        deq = np.asarray(op.materialized_val_inference(), dtype=np.float32)
        ref = ref.astype(np.float32)
        if scale.ndim == ref.ndim:  # blockwise_shift_scale (iOS18): one scale per block of each axis
            step = scale
            for d in range(ref.ndim):
                step = np.repeat(step, ref.shape[d] // step.shape[d], axis=d)
        else:  # affine_dequantize (iOS16): one scale per channel along ``axis`` (or one for the tensor)
            axis = int(op.axis.val) % ref.ndim
            step = scale.reshape([-1 if d == axis else 1 for d in range(ref.ndim)]) if scale.ndim else scale
        bound = (0.5 + 127 * _FP16_EPS) * np.abs(step) + _FP16_EPS * np.abs(ref) + 6.0e-8
        worst = max(worst, float(np.max(np.abs(deq - ref) / bound)))
        quantized += 1
        int8_bytes += data.size
    if quantized == 0:
        raise ExportError(f"Core ML INT8 package '{int8_path.name}' holds no quantized weight")
    if worst > 1.0:
        raise ExportError(f"Core ML INT8 package '{int8_path.name}': a dequantized weight is {worst:.3g} half-steps "
                          "from its fp16 value; linear_quantize_weights changed more than the rounding")
    return {"quantized_weights": quantized, "int8_values": int8_bytes, "max_error_in_half_steps": worst}


def emulate(prep: Prepared, path: Path, label: str) -> dict[str, Any]:
    """The task's fidelity to PyTorch of the wrapper carrying the weights stored in ``path`` (INT8 ones
    dequantized), run by PyTorch in fp16: an emulation of the package's precision, not of Core ML's kernels.
    ParityError below the quantized floor, as for the other runtimes' fp16 / INT8 files."""
    import copy

    import numpy as np
    import torch

    from export.parity import torch_runner

    stored = _weight_values(path)
    module = copy.deepcopy(prep.wrapper)
    loaded = 0
    with torch.no_grad():
        for name, param in module.state_dict().items():
            value = stored.get(_torch_name(name))
            if value is not None and tuple(value.shape) == tuple(param.shape) and param.is_floating_point():
                param.copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
                loaded += 1
    result = prep.check_quantized(label, torch_runner(module.half(), prep.input_names), enforce=True)
    return {"how": "the package's weights in the PyTorch model, run in fp16 by PyTorch (not Core ML)",
            "weights_loaded": loaded, **{k: result[k] for k in ("fidelity", "floor", "min_cosine", "max_abs_diff")}}


def _mac_runner(path: Path, prep: Prepared) -> Any:
    """A parity runner predicting with Core ML itself (macOS only): int32 feeds, outputs in the head's order."""
    import numpy as np

    model = coremltools_module().models.MLModel(str(path))

    def run(batch: dict) -> list:
        out = model.predict({n: batch[n].astype(np.int32) for n in prep.input_names})
        return [np.asarray(out[n], dtype=np.float32) for n in prep.output_names]

    return run


def _save_package(model: Any, path: Path) -> None:
    """``model.save`` into a fresh folder beside ``path``, then put in place (an older package replaced; a link at
    ``path`` refused, never written through)."""
    import shutil
    import tempfile

    from compress.core.fsio import refuse_symlink, replace_dir

    refuse_symlink(path, "Core ML package")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        model.save(str(tmp / path.name))
        replace_dir(tmp / path.name, path, "Core ML package")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_coreml(prep: Prepared, onnx_path: Path, path: Path, done: "Written") -> None:
    """Write ``coreml/model.mlpackage`` (fp16) and ``coreml/model_int8.mlpackage`` (INT8 weights), load both
    back and check what Linux can check; on macOS, predict and hold both to the fp16 / INT8 fidelity floor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    int8_path = path.with_name(path.stem + "_int8" + path.suffix)
    model = convert(prep)
    _save_package(model, path)
    try:
        int8 = quantize_int8(model)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"coremltools could not quantize the weights of '{path}': {type(exc).__name__}: {exc}") from exc
    _save_package(int8, int8_path)

    spec, program = load_program(path)
    spec8, program8 = load_program(int8_path)
    interface = check_interface(prep, spec, program, f"Core ML package '{path.name}'")
    check_interface(prep, spec8, program8, f"Core ML package '{int8_path.name}'")
    ops, ops8 = compute_ops(program), compute_ops(program8)
    if ops != ops8:
        raise ExportError(f"Core ML INT8 package '{int8_path.name}' runs ops {ops8}, the fp16 one {ops}; weight "
                          "quantization must change only how weights are stored")
    spec_info = {"spec_version": spec.specificationVersion, "deployment_target": "iOS16 / macOS 13",
                 "compute_precision": "fp16", "flexible_shapes": "RangeDim", **interface}
    fp16_checks = {"weights": check_fp16_weights(prep, path), "compute_ops": ops,
                   "emulated": emulate(prep, path, f"Core ML package '{path.name}' emulated in PyTorch fp16")}
    int8_checks = {"weights": check_int8_weights(path, int8_path), "compute_ops": ops8,
                   "emulated": emulate(prep, int8_path, f"Core ML package '{int8_path.name}' emulated in PyTorch fp16")}
    if sys.platform == "darwin":
        fp16_result = prep.check_quantized(f"Core ML fp16 package '{path.name}'", _mac_runner(path, prep), enforce=True)
        int8_result = prep.check_quantized(f"Core ML INT8 package '{int8_path.name}'", _mac_runner(int8_path, prep),
                                           enforce=True)
        done.metrics["parity_coreml"] = {**prep.check(f"Core ML package '{path.name}'", _mac_runner(path, prep),
                                                       enforce=False),
                                         "predicted": True, "fidelity": fp16_result["fidelity"],
                                         "floor": fp16_result["floor"], "spec": spec_info, "checks": fp16_checks}
        done.metrics["quantized_coreml_int8"] = {**int8_result, "predicted": True, "checks": int8_checks}
    else:
        not_run = {"max_abs_diff": None, "min_cosine": None, "max_rel_diff": None, "bound_used": None,
                   "enforced": False, "predicted": False, "why": NOT_PREDICTED, "note": NOT_PREDICTED}
        done.metrics["parity_coreml"] = {**not_run, "spec": spec_info, "checks": fp16_checks}
        done.metrics["quantized_coreml_int8"] = {**not_run, "checks": int8_checks}
    done.precisions.setdefault("coreml", {})["int8"] = int8_path

