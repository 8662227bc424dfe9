"""Config of the export stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.config_base import Section


class ExportConfig(Section):
    """Formats to write and the parity tolerance they must meet."""

    formats: list[Literal["onnx"]] = Field(default_factory=lambda: ["onnx"])
    opset: int = Field(17, ge=11, le=21)
    atol: float = Field(1e-4, gt=0, description="max absolute difference allowed against PyTorch")
    include_teacher: bool = Field(False, description="also export the teacher (a baseline for bench)")
