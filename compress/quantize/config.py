"""Config of the quantization stage: which variants to produce, how to calibrate, the accuracy guard."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.core.config_base import Section

Method = Literal["dynamic", "static", "nncf", "qat", "fp16", "int4"]
CalibrationName = Literal["minmax", "entropy", "percentile"]
IntType = Literal["qint8", "quint8"]


class StaticOptions(Section):
    """ONNX Runtime static INT8 (QDQ format) calibration."""

    calibration_method: CalibrationName = Field("minmax", description="activation range estimator")
    percentile: float = Field(99.999, gt=90, le=100, description="percentile for calibration_method=percentile")


class NNCFOptions(Section):
    """NNCF post-training quantization of the ONNX graph (nncf.quantize, model_type=TRANSFORMER)."""

    smooth_quant_alpha: float | None = Field(0.95, ge=0, le=1, description="SmoothQuant alpha for MatMuls (None: off)")
    ignored_patterns: list[str] = Field(default_factory=list, description="node-name regexes kept in float")
    fast_bias_correction: bool = True


class QATOptions(Section):
    """NNCF quantization-aware training: PTQ-initialised fake quantizers, then a short distillation fine-tune."""

    only_if_ptq_fails: bool = Field(True, description="skip QAT when NNCF PTQ (listed before it) met the floor")
    max_steps: int = Field(200, ge=1, description="optimizer steps of the fine-tune (distill section's loss mix)")
    learning_rate: float = Field(1e-5, gt=0, description="small: the weights only adapt to the quantization grid")
    batch_size: int = Field(16, ge=1)


class FP16Options(Section):
    """Float16 conversion for GPU targets (onnxruntime.transformers float16)."""

    keep_io_types: bool = Field(True, description="keep float32 graph inputs/outputs (casts inside)")


class Int4Options(Section):
    """Weight-only 4-bit MatMuls (ONNX Runtime MatMulNBits)."""

    block_size: int = Field(32, ge=16, description="weights per quantization block (power of two >= 16)")
    symmetric: bool = True
    accuracy_level: int | None = Field(4, ge=0, le=4, description="MatMulNBits compute type (4: int8 activations)")


class EmbeddingOptions(Section):
    """Precision of the word-embedding table in the quantized variants: most of a small encoder's file."""

    bits: Literal[8, 4] = Field(8, description="8: the method's own INT8 table (or float, for int4); 4: ONNX Runtime's "
                                              "GatherBlockQuantized, 4-bit blocks along the hidden axis")
    block_size: int = Field(32, ge=16, description="values per 4-bit block (a power of two >= 16)")
    symmetric: bool = Field(True, description="signed 4-bit values, no zero points")

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("block_size must be a power of two (16, 32, 64, 128)")
        return v


class GuardOptions(Section):
    """Accuracy guard: compare every quantized model with fp32 on the eval rows; fall back when under the floor."""

    retention_floor: float = Field(0.99, gt=0, le=1, description="quantized metric / fp32 metric must reach this (0, 1]")
    eval_samples: int = Field(256, ge=1, description="eval rows used by the guard (first N)")
    fallbacks: bool = Field(True, description="try fallbacks (float embeddings/head, sensitive layers, per-channel, other calibration)")
    sensitive_layers: int = Field(1, ge=1, description="how many of the most sensitive encoder layers a fallback keeps in float")
    sensitivity_samples: int = Field(64, ge=1, description="eval rows used to rank layer sensitivity")


class LatencyOptions(Section):
    """Side-by-side latency check (quantized vs fp32, interleaved runs, medians)."""

    runs: int = Field(20, ge=3, description="timed runs per model (after warmup)")
    warmup: int = Field(3, ge=0)
    batch_size: int = Field(8, ge=1)
    seq_len: int | None = Field(None, ge=8, description="padded length (None: teacher.max_length)")


class TargetCpu(Section):
    """The CPU the INT8 recipe is chosen for, when it is not this machine's (the search fills it from a probe)."""

    source: str = Field(description="where it was read, e.g. the ssh:// target that was probed")
    arch: str = Field(description="platform.machine() there: aarch64, x86_64, ...")
    model: str = ""
    flags: list[str] = Field(default_factory=list, description="ISA flags: asimddp/dotprod, avx2, avx512_vnni, ...")


class QuantizeConfig(Section):
    """Which quantized variants to produce from the exported ONNX model, and how they are checked."""

    methods: list[Method] = Field(default_factory=lambda: ["dynamic"])
    per_channel: bool = False
    reduce_range: bool | None = Field(None, description="None: chosen from the CPU's instruction set")
    weight_type: IntType | None = Field(None, description="int8 weight type; None: chosen from the CPU's instruction set")
    activation_type: IntType | None = Field(None, description="static/NNCF activation type; None: from the CPU")
    target_cpu: TargetCpu | None = Field(
        None, description="choose weight/activation types and reduce_range for this CPU instead of this machine's "
                          "(search.targets.device ssh://... fills it by probing the device)")
    optimize_graph: bool = Field(False, description="fuse BERT ops (onnxruntime.transformers.optimizer) before quantizing")
    slow_cpu_fusions: bool | None = Field(
        None, description="with optimize_graph, also fuse SkipLayerNormalization and BiasGelu: ONNX Runtime's CPU "
                          "kernels for them are slower than the ops they replace (BENCHMARKS.md); None: only for a "
                          "search whose target device is cuda")
    calibration_samples: int = Field(128, ge=1, description="train rows fed to static/NNCF calibration (batch 1)")
    static: StaticOptions = Field(default_factory=StaticOptions)
    nncf: NNCFOptions = Field(default_factory=NNCFOptions)
    qat: QATOptions = Field(default_factory=QATOptions)
    fp16: FP16Options = Field(default_factory=FP16Options)
    int4: Int4Options = Field(default_factory=Int4Options)
    embedding: EmbeddingOptions = Field(default_factory=EmbeddingOptions)
    guard: GuardOptions = Field(default_factory=GuardOptions)
    latency: LatencyOptions = Field(default_factory=LatencyOptions)
