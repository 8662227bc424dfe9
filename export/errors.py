"""Errors of the export step; each says what was asked, why it cannot be done and what to do."""

from __future__ import annotations

from compress.core.errors import EdgepressError, ParityError

__all__ = ["ExportError", "UnsupportedHeadError", "OpsetError", "OutputExistsError", "FormatUnavailableError",
           "ParityError"]


class ExportError(EdgepressError):
    """A converter (torch.onnx, TorchScript, ORT, ExecuTorch) failed on this model."""


class UnsupportedHeadError(ExportError):
    """The task head asked for cannot be written in the asked format (or is unknown)."""


class OpsetError(ExportError):
    """The ONNX opset asked for is one the exporter or ONNX Runtime cannot handle."""


class OutputExistsError(ExportError):
    """The output directory exists and overwrite was not asked for."""


class FormatUnavailableError(ExportError):
    """A format's backend cannot work in this environment (e.g. a version clash)."""
