"""One function per quantization method: ONNX in, ONNX out, driven by ``Settings``.

dynamic/static: ``onnxruntime.quantization`` (QDQ for static); nncf: ``nncf.quantize`` on the ONNX graph
(QDQ output ONNX Runtime loads); fp16: ``onnxruntime.transformers`` float16 conversion; int4:
``MatMulNBitsQuantizer`` (weight-only). ORT is used directly rather than optimum's ORTQuantizer,
whose static path needs a ``datasets.Dataset`` and a transformers config; the calls are the same.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.errors import EdgepressError, require
from compress.quantize.graph import quiet

if TYPE_CHECKING:
    from compress.quantize.calibration import TextCalibrationFeeds
    from compress.quantize.config import QuantizeConfig

# Static QDQ quantizes the weight-bearing ops only: residual/mask Adds, Where and Softmax stay float (the
# mask's float-min constants would also overflow the histogram calibrators).
STATIC_OPS = ("MatMul", "Gemm", "Gather")
CALIBRATION = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@dataclass
class Settings:
    """Everything one quantization attempt varies; ``float_blocks`` are graph blocks kept in float."""

    method: str
    per_channel: bool = False
    reduce_range: bool = False
    weight_type: str = "qint8"
    activation_type: str = "quint8"
    calibration: str = "minmax"
    smooth_quant_alpha: float | None = None
    weight_matmuls_only: bool = False
    float_blocks: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The settings this method actually reads (for stage.json)."""
        unused = {"static": (), "nncf": ("calibration",), "dynamic": ("calibration", "activation_type"),
                  "qat": ("calibration", "per_channel", "reduce_range", "weight_type"),
                  "fp16": ("calibration", "per_channel", "reduce_range", "weight_type", "activation_type"),
                  "int4": ("calibration", "per_channel", "reduce_range", "weight_type", "activation_type")}
        d = asdict(self)
        for key in unused.get(self.method, ()):
            d.pop(key)
        if self.method != "static":
            d.pop("weight_matmuls_only")
        if self.method != "nncf":
            d.pop("smooth_quant_alpha")
        return d


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[name]


@quiet("onnxruntime.quantization")
def quantize_dynamic(src: Path, dst: Path, s: Settings, exclude: list[str]) -> None:
    """ORT dynamic INT8: int8 weights, activations quantised at run time (always uint8 in ORT)."""
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic

    ort_dynamic(str(src), str(dst), per_channel=s.per_channel, reduce_range=s.reduce_range,
                weight_type=_qtype(s.weight_type), nodes_to_exclude=exclude,
                extra_options={"MatMulConstBOnly": True})


@quiet("onnxruntime.quantization")
def quantize_static(src: Path, dst: Path, s: Settings, exclude: list[str], feeds: "TextCalibrationFeeds",
                    percentile: float, cache_dir: Path) -> None:
    """ORT static INT8 in QDQ format; activation ranges from ``feeds`` (cached per calibration method)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat
    from onnxruntime.quantization import quantize_static as ort_static

    from compress.quantize.calibration import ort_reader

    if s.activation_type == "qint8" and s.weight_type == "quint8":
        raise EdgepressError("static QDQ does not support int8 activations with uint8 weights; "
                             "set quantize.weight_type=qint8 or quantize.activation_type=quint8")
    extra: dict[str, Any] = {"MatMulConstBOnly": s.weight_matmuls_only}
    if s.weight_matmuls_only:  # the QDQ quantizer ignores MatMulConstBOnly: name attention's QK^T and PV MatMuls
        import onnx

        from compress.quantize.graph import activation_matmuls

        exclude = [*exclude, *activation_matmuls(onnx.load(str(src)))]
    if s.calibration == "percentile":
        extra["CalibPercentile"] = percentile
    cache = cache_dir / f"calibration-{s.calibration}.json"
    cache_dir.mkdir(parents=True, exist_ok=True)
    if s.calibration != "minmax":
        feeds = feeds.packed()  # histogram collectors need one shape across batches and no padding
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their settings
        ort_static(str(src), str(dst), calibration_data_reader=None if cache.is_file() else ort_reader(feeds),
                   quant_format=QuantFormat.QDQ, op_types_to_quantize=list(STATIC_OPS), per_channel=s.per_channel,
                   reduce_range=s.reduce_range, activation_type=_qtype(s.activation_type),
                   weight_type=_qtype(s.weight_type), nodes_to_exclude=exclude,
                   calibrate_method=getattr(CalibrationMethod, CALIBRATION[s.calibration]),
                   extra_options=extra, calibration_cache_path=str(cache))


@quiet("nncf")
def quantize_nncf(src: Path, dst: Path, s: Settings, exclude: list[str], feeds: "TextCalibrationFeeds",
                  cfg: "QuantizeConfig") -> None:
    """NNCF post-training quantization of the ONNX graph (TRANSFORMER model type, QDQ output)."""
    import onnx

    nncf = require("nncf", extra=None)
    model = onnx.load(str(src))
    names = {n.name for n in model.graph.node}
    patterns = [p for p in cfg.nncf.ignored_patterns if any(re.search(p, n) for n in names)]
    ignored = nncf.IgnoredScope(names=[n for n in exclude if n in names], patterns=patterns, validate=False)
    sq = nncf.AdvancedSmoothQuantParameters(matmul=-1 if s.smooth_quant_alpha is None else s.smooth_quant_alpha)
    advanced = nncf.AdvancedQuantizationParameters(smooth_quant_alphas=sq)
    if s.activation_type == "qint8":
        preset = nncf.QuantizationPreset.PERFORMANCE  # symmetric activations
    else:
        preset = nncf.QuantizationPreset.MIXED
    quantized = nncf.quantize(model, nncf.Dataset(list(feeds)), preset=preset, model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=max(1, len(feeds)), fast_bias_correction=cfg.nncf.fast_bias_correction,
                              ignored_scope=ignored, advanced_parameters=advanced)
    onnx.save(quantized, str(dst))


@quiet("onnxruntime.transformers")
def convert_fp16(src: Path, dst: Path, s: Settings, exclude: list[str], keep_io_types: bool) -> None:
    """Float16 weights and compute for GPU targets, float32 inputs/outputs kept by default."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    # symbolic shape inference types the fused com.microsoft ops as well
    model.convert_float_to_float16(keep_io_types=keep_io_types, node_block_list=exclude or None)
    model.save_model_to_file(str(dst))


@quiet("onnxruntime.quantization")
def quantize_int4(src: Path, dst: Path, s: Settings, exclude: list[str], block_size: int, symmetric: bool,
                  accuracy_level: int | None) -> None:
    """Weight-only 4-bit MatMuls (MatMulNBits, QOperator) with blockwise scales."""
    import onnx

    require("onnx_ir", pip_name="onnx-ir")
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    if block_size & (block_size - 1):
        raise EdgepressError(f"quantize.int4.block_size={block_size} must be a power of two (16, 32, 64, 128)")
    quant = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=block_size, is_symmetric=symmetric,
                                 accuracy_level=accuracy_level, nodes_to_exclude=exclude)
    quant.process()
    quant.model.save_model_to_file(str(dst))


PRECISION = {"dynamic": "int8", "static": "int8", "nncf": "int8", "qat": "int8", "fp16": "fp16", "int4": "int4"}
FILE_TAG = {"dynamic": "int8-dynamic", "static": "int8-static", "nncf": "int8-nncf", "qat": "int8-qat", "fp16": "fp16",
            "int4": "int4"}
