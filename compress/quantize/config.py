"""Config of the quantization stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.config_base import Section


class QuantizeConfig(Section):
    """Which quantized variants to produce from the exported ONNX model."""

    methods: list[Literal["dynamic"]] = Field(default_factory=lambda: ["dynamic"])
    per_channel: bool = False
    reduce_range: bool | None = Field(None, description="None: chosen from the CPU's instruction set")
    weight_type: Literal["qint8", "quint8"] = "qint8"
