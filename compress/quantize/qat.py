"""NNCF quantization-aware training: PTQ on the PyTorch student, a short distillation fine-tune, QDQ ONNX out.

Used when post-training quantization loses too much: ``nncf.quantize`` inserts fake quantizers (ranges
from the calibration rows), the quantized student is trained for a few hundred steps with the distillation
loss against the teacher (transformers.Trainer, the distill stage's loss mix), then the quantizers are put in
NNCF's ONNX export mode, so ``torch.onnx.export`` writes each as a QuantizeLinear/DequantizeLinear pair
that ONNX Runtime runs in INT8; the weights' QuantizeLinear nodes are folded into int8 initializers.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from compress.core.errors import EdgepressError, require
from compress.tasks import task_spec

if TYPE_CHECKING:
    from compress.data.rows import TextData
    from compress.distill.config import DistillConfig
    from compress.quantize.calibration import TextCalibrationFeeds
    from compress.quantize.config import QATOptions

# nncf compiles its C++ fake-quantize kernels on first use (about a minute on 2 cores): no 60 s limit.
# Read by nncf when the extension loads; set only while QAT runs (a value the user set is kept).
NNCF_TIMEOUT = {"NNCF_EXTENSION_LOAD_TIMEOUT": "0"}


@contextmanager
def scoped_env(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in os.environ (where not already set) for the block, the previous state restored after."""
    added = [k for k in values if k not in os.environ]
    for k in added:
        os.environ[k] = values[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@dataclass
class QATSource:
    """What QAT needs beyond the ONNX file: the PyTorch student it was exported from, the teacher, train texts."""

    student_dir: Path
    teacher: str
    train: "TextData"
    distill: "DistillConfig"
    seed: int = 42


def qat_distill_config(base: "DistillConfig", opts: "QATOptions") -> "DistillConfig":
    """The distill section's loss mix with QAT's short schedule and small learning rate."""
    return base.model_copy(update={"max_steps": opts.max_steps, "learning_rate": opts.learning_rate,
                                   "batch_size": opts.batch_size, "warmup_ratio": 0.1, "epochs": 1.0,
                                   "logging_steps": max(1, min(base.logging_steps, opts.max_steps // 4 or 1))})


def train_texts(src: QATSource, opts: "QATOptions") -> "TextData":
    """The first rows QAT's steps will read (teacher outputs are computed for these only)."""
    from compress.data.rows import TextData

    n = opts.max_steps * opts.batch_size
    t = src.train
    return TextData(t.texts[:n], None if t.pairs is None else t.pairs[:n], None if t.labels is None else t.labels[:n],
                    source=t.source)


def _torch_feeds(feeds: "TextCalibrationFeeds") -> list[dict[str, Any]]:
    import torch

    return [{k: torch.from_numpy(v) for k, v in f.items()} for f in feeds]


def qdq_export_mode(model: Any) -> int:
    """Make every NNCF quantizer in ``model`` export as an ONNX QuantizeLinear/DequantizeLinear pair."""
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode

    quantizers = [m for m in model.modules() if isinstance(m, BaseQuantizer)]
    if not quantizers:
        raise EdgepressError("QAT: nncf.quantize inserted no quantizers into the student (unsupported architecture?)")
    for q in quantizers:
        q.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    return len(quantizers)


def export_qdq(model: Any, task: str, example: dict[str, Any], dst: Path, interface: Any = None) -> int:
    """Write the fake-quantized ``model`` as QDQ ONNX (the export interface of ``task``, pooled as ``interface``
    says); returns the number of int8 weights folded."""
    import torch

    from compress.quantize.graph import fold_weight_quantizers
    from export.heads import get_head, make_wrapper

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    base = getattr(model, getattr(model, "base_model_prefix", ""), model) if task_spec(task).pooled else model
    head = get_head(task)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    for out in head.outputs:
        axes[out.name] = {i: d for i, d in enumerate(out.shape) if d in ("batch", "sequence")}
    with torch.no_grad():
        torch.onnx.export(make_wrapper(base, head.task, names, interface), tuple(example[n] for n in names), str(dst), dynamo=False,
                          input_names=names, output_names=head.output_names, dynamic_axes=axes, opset_version=17)
    return fold_weight_quantizers(dst)


def quantize_qat(src: QATSource, dst: Path, activation_type: str, feeds: "TextCalibrationFeeds", task: str,
                 max_length: int, opts: "QATOptions", work: Path) -> dict[str, Any]:
    """PTQ-initialised fake quantizers, ``opts.max_steps`` distillation steps, QDQ ONNX written to ``dst``.

    ``activation_type`` (the method settings' ``qint8`` / ``quint8``) picks NNCF's preset: symmetric or mixed."""
    from compress.quantize.graph import quiet

    with scoped_env(NNCF_TIMEOUT), quiet("nncf", level=logging.WARNING):
        return _quantize_qat(src, dst, activation_type, feeds, task, max_length, opts, work)


def _quantize_qat(src: QATSource, dst: Path, activation_type: str, feeds: "TextCalibrationFeeds", task: str,
                  max_length: int, opts: "QATOptions", work: Path) -> dict[str, Any]:
    import torch

    from compress.distill.engine import distill_model
    from compress.model.interface import interface_of
    from compress.model.loading import load_model, load_tokenizer

    nncf = require("nncf", extra=None)
    if not Path(src.student_dir).is_dir():
        raise EdgepressError(f"QAT needs the PyTorch student folder; '{src.student_dir}' does not exist")
    calib = _torch_feeds(feeds)
    if not calib:
        raise EdgepressError("QAT needs calibration rows for its initial quantizer ranges; the calibration data is empty")
    student = load_model(str(src.student_dir), task)
    iface = interface_of(src.student_dir, task)
    preset = nncf.QuantizationPreset.PERFORMANCE if activation_type == "qint8" else nncf.QuantizationPreset.MIXED
    start = time.perf_counter()
    with torch.no_grad():
        qmodel = nncf.quantize(student, nncf.Dataset(calib), preset=preset, model_type=nncf.ModelType.TRANSFORMER,
                               subset_size=len(calib))
    ptq_seconds = time.perf_counter() - start
    outcome = distill_model(load_model(src.teacher, task), qmodel, load_tokenizer(str(src.student_dir)),
                            train_texts(src, opts), None, task, qat_distill_config(src.distill, opts), max_length,
                            work / "qat", src.seed, checkpoint_dir=work / "qat-checkpoints", save_checkpoints=False,
                            interface=iface)
    quantizers = qdq_export_mode(outcome.model.eval())
    folded = export_qdq(outcome.model, task, calib[0], dst, iface)
    return {"quantizers": quantizers, "int8_weights": folded, "ptq_init_seconds": round(ptq_seconds, 2),
            "steps": outcome.metrics["steps"], "train_loss": outcome.metrics["train_loss"],
            "train_seconds": outcome.metrics["train_seconds"], "train_examples": outcome.metrics["train_examples"]}
