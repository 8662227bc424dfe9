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
from typing import TYPE_CHECKING, Any, Callable

from compress.core.errors import EdgepressError, require
from compress.quantize.graph import quiet

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from compress.quantize.calibration import TextCalibrationFeeds
    from compress.quantize.config import QuantizeConfig
    from compress.quantize.qat import QATSource

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
    embedding_bits: int = 8
    float_blocks: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The settings this method actually reads (for stage.json)."""
        d = asdict(self)
        for key in METHODS[self.method].unused if self.method in METHODS else ():
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
def quantize_embedding_table(path: Path, gathers: list[str], block_size: int, symmetric: bool) -> None:
    """Rewrite the Gathers named ``gathers`` of ``path`` in place as 4-bit GatherBlockQuantized (blocks along hidden).

    ORT's MatMulNBitsQuantizer does the rewrite; every other Gather is excluded by name, since its
    ``nodes_to_include`` adds to the op-type selection instead of narrowing it.
    """
    import warnings

    import numpy as np
    import onnx

    require("onnx_ir", pip_name="onnx-ir")
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name not in gathers]
    quant = MatMulNBitsQuantizer(model, bits=4, block_size=block_size, is_symmetric=symmetric,
                                 op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),),
                                 nodes_to_exclude=others)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-zero rows (e.g. [PAD]) have scale 0; ORT maps them to 0
        quant.process()
    # ORT raises the default-domain opset to 21 for the int4 type, which would re-define the graph's own ops
    # (ReduceL2 lost its axes attribute in opset 18); the int4 tensors only need IR version 10, which stays.
    for o in quant.model.model.opset_import:
        if o.domain in ("", "ai.onnx") and opset is not None:
            o.version = opset
    pack_tables_as_uint8(quant.model.model)
    quant.model.save_model_to_file(str(path))


def _nibble_pairs(values: "np.ndarray") -> "np.ndarray":
    """0..15 values packed two to a byte along the last axis, the first in the low nibble (MatMulNBits' layout)."""
    import numpy as np

    if values.shape[-1] % 2:
        values = np.concatenate([values, np.zeros((*values.shape[:-1], 1), values.dtype)], axis=-1)
    return (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)


def pack_tables_as_uint8(model: "onnx.ModelProto") -> int:
    """Store every GatherBlockQuantized table (and its zero points) as uint8 nibble pairs with ``bits=4`` instead of
    an INT4/UINT4 tensor; returns how many tables were rewritten.

    The values are the same (uint8 data takes MatMulNBits' convention: an unsigned nibble and a default zero point
    of 8, so a signed value v is stored as v + 8), but ONNX Runtime 1.32 looks a uint8 table up 4-6x faster (14 vs
    78 us for 24 tokens of MiniLM's 30,522 x 384 table, ~8 % of a pruned 3-layer model's batch-1 latency), its
    CUDA kernel takes only uint8, and the ORT mobile format can hold uint8 tensors but not int4 ones.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    packed = 0
    for node in model.graph.node:
        if node.op_type != "GatherBlockQuantized" or node.input[0] not in inits:
            continue
        data = inits[node.input[0]]
        if data.data_type not in (TensorProto.INT4, TensorProto.UINT4):
            continue
        values = numpy_helper.to_array(data).astype(np.int16)
        if data.data_type == TensorProto.INT4:
            if len(node.input) > 3 and node.input[3]:
                raise EdgepressError(f"{node.name}: a signed 4-bit table with zero points; quantize it symmetric")
            values = values + 8  # the uint8 convention's default zero point
        data.CopyFrom(numpy_helper.from_array(_nibble_pairs(values), data.name))
        if len(node.input) > 3 and node.input[3] in inits:  # asymmetric: UINT4 zero points, one per block
            zp = inits[node.input[3]]
            zp.CopyFrom(numpy_helper.from_array(_nibble_pairs(numpy_helper.to_array(zp).astype(np.int16)), zp.name))
        for a in [a for a in node.attribute if a.name == "bits"]:
            node.attribute.remove(a)
        node.attribute.append(helper.make_attribute("bits", 4))
        packed += 1
    return packed


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


# ----------------------------------------------------------------------------- the registry

# What a method can need besides the prepared ONNX graph (MethodSpec.needs):
CALIBRATION_FEEDS = "calibration_feeds"  # tokenized calibration rows (MethodInputs.feeds)
PLAIN_GRAPH = "plain_graph"              # a graph without com.microsoft fused ops (NNCF's ONNX backend)
PYTORCH_STUDENT = "pytorch_student"      # the PyTorch student, its teacher and texts (MethodInputs.qat)


@dataclass
class MethodInputs:
    """What a quantization run offers its methods: the source graph, the config, a work folder, calibration, QAT."""

    src: Path
    cfg: "QuantizeConfig"
    work: Path
    feeds: "TextCalibrationFeeds | None" = None
    qat: "tuple[QATSource | None, str, int] | None" = None  # (source, task, max_length)


MethodRun = Callable[[MethodInputs, Settings, Path, list[str]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class MethodSpec:
    """One quantize method: its function, what it needs, its precision and file tag, the settings it ignores."""

    name: str
    run: MethodRun
    precision: str
    file_tag: str
    needs: frozenset[str] = frozenset()
    unused: tuple[str, ...] = ()  # Settings fields the method does not read (left out of describe())

    def quantizer(self, job: MethodInputs) -> Callable[[Settings, Path, list[str]], "dict[str, Any] | None"]:
        """The (settings, dst, exclude) function the accuracy guard calls, bound to ``job``."""
        if "embedding_bits" in self.unused:
            return lambda s, dst, exclude: self.run(job, s, dst, exclude)
        return lambda s, dst, exclude: _with_embedding_table(self.run, job, s, dst, exclude)


def _with_embedding_table(run: MethodRun, job: MethodInputs, s: Settings, dst: Path,
                          exclude: list[str]) -> "dict[str, Any] | None":
    """``run`` with the word-embedding table left to a 4-bit pass afterwards when ``s.embedding_bits`` is 4.

    A table the guard keeps in float (it is in ``exclude``) stays float.
    """
    if s.embedding_bits == 8:
        return run(job, s, dst, exclude)
    import onnx

    from compress.quantize.graph import word_embedding_gathers

    table = word_embedding_gathers(onnx.load(str(job.src)))
    if not table:
        raise EdgepressError(f"quantize.embedding.bits=4: no Gather in '{job.src}' looks input_ids up in a constant "
                             "table (a fused EmbedLayerNormalization holds it?); set quantize.embedding.bits=8")
    if set(table) & set(exclude):
        return run(job, s, dst, exclude)
    details = run(job, s, dst, [*exclude, *table]) or {}
    opts = job.cfg.embedding
    quantize_embedding_table(dst, table, opts.block_size, opts.symmetric)
    return {**details, "embedding_table": {"bits": 4, "op": "GatherBlockQuantized", "nodes": table,
                                           "block_size": opts.block_size, "symmetric": opts.symmetric}}


def _run_dynamic(job: MethodInputs, s: Settings, dst: Path, exclude: list[str]) -> None:
    """Dynamic INT8 of ``job.src``."""
    quantize_dynamic(job.src, dst, s, exclude)


def _run_static(job: MethodInputs, s: Settings, dst: Path, exclude: list[str]) -> None:
    """Static QDQ INT8 of ``job.src`` calibrated on ``job.feeds`` (calibration cache under the work folder)."""
    quantize_static(job.src, dst, s, exclude, job.feeds, job.cfg.static.percentile, job.work / "calib")


def _run_nncf(job: MethodInputs, s: Settings, dst: Path, exclude: list[str]) -> None:
    """NNCF PTQ of ``job.src`` (the plain graph) calibrated on ``job.feeds``."""
    quantize_nncf(job.src, dst, s, exclude, job.feeds, job.cfg)


def _run_qat(job: MethodInputs, s: Settings, dst: Path, exclude: list[str]) -> dict[str, Any]:
    """QAT of the PyTorch student, exported to QDQ ONNX (``exclude`` does not apply: it has no fallbacks)."""
    from compress.quantize.qat import quantize_qat

    source, task, max_length = job.qat
    return {"qat": quantize_qat(source, dst, s.activation_type, job.feeds, task, max_length, job.cfg.qat, job.work)}


def _run_fp16(job: MethodInputs, s: Settings, dst: Path, exclude: list[str]) -> None:
    """FP16 conversion of ``job.src``."""
    convert_fp16(job.src, dst, s, exclude, job.cfg.fp16.keep_io_types)


def _run_int4(job: MethodInputs, s: Settings, dst: Path, exclude: list[str]) -> None:
    """Weight-only INT4 of ``job.src`` with the configured block size, symmetry and accuracy level."""
    opts = job.cfg.int4
    quantize_int4(job.src, dst, s, exclude, opts.block_size, opts.symmetric, opts.accuracy_level)


_INT4_UNUSED = ("calibration", "per_channel", "reduce_range", "weight_type", "activation_type")  # a 4-bit table fits
_FLOAT_UNUSED = (*_INT4_UNUSED, "embedding_bits")
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("dynamic", _run_dynamic, "int8", "int8-dynamic", unused=("calibration", "activation_type")),
    MethodSpec("static", _run_static, "int8", "int8-static", frozenset({CALIBRATION_FEEDS})),
    MethodSpec("nncf", _run_nncf, "int8", "int8-nncf", frozenset({CALIBRATION_FEEDS, PLAIN_GRAPH}),
               unused=("calibration",)),
    MethodSpec("qat", _run_qat, "int8", "int8-qat", frozenset({CALIBRATION_FEEDS, PYTORCH_STUDENT}),
               unused=("calibration", "per_channel", "reduce_range", "weight_type", "embedding_bits")),
    MethodSpec("fp16", _run_fp16, "fp16", "fp16", unused=_FLOAT_UNUSED),
    MethodSpec("int4", _run_int4, "int4", "int4", unused=_INT4_UNUSED),
)}


def method_spec(name: str) -> MethodSpec:
    """The registry entry of method ``name``; an unknown name is refused in one line."""
    spec = METHODS.get(name)
    if spec is None:
        raise EdgepressError(f"unknown quantize method '{name}'; choose from {', '.join(METHODS)}")
    return spec


def needs_any(methods: list[str], need: str) -> bool:
    """Whether any of ``methods`` needs ``need`` (one of the constants above)."""
    return any(need in method_spec(m).needs for m in methods)


PRECISION = {name: spec.precision for name, spec in METHODS.items()}
FILE_TAG = {name: spec.file_tag for name, spec in METHODS.items()}
