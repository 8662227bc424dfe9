"""Config of the export stage."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from compress.core.config_base import Section
from compress.model.formats import FORMAT_SPECS, FORMATS
from export.parity import DEFAULT_ATOL, DEFAULT_MIN_COSINE, DEFAULT_RTOL


def _registered_format(value: object) -> object:
    """A format of the registry as it is when the config is read (one registered after import too), refused with
    pydantic's own literal error otherwise."""
    if value not in FORMATS:
        names = [f"'{n}'" for n in FORMATS]
        expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


# a Literal would freeze the format list when the class is built; this reads the registry at each validation
ExportFormat = Annotated[str, BeforeValidator(_registered_format)]


class ExportConfig(Section):
    """Formats to write and the parity tolerance they must meet (model.onnx is always written)."""

    formats: list[ExportFormat] = Field(
        default_factory=lambda: ["onnx"],
        description="onnx (always written: quantize and bench read it), torchscript (.pt), ptl (lite interpreter), "
                    "ort (ONNX Runtime mobile format), executorch (.pte with XNNPACK; 'pte' is accepted too), "
                    "litert (.tflite, + fp16 and INT8), openvino (IR .xml/.bin, + NNCF INT8), coreml (.mlpackage "
                    "fp16, + INT8 weights; not run on Linux). Each runtime format needs its extra: "
                    f"pip install 'edgepress[{'|'.join(s.extra for s in FORMAT_SPECS.values() if s.extra)}]'")
    opset: int = Field(17, ge=11, le=21, description="ONNX opset (torch's dynamo=False exporter writes up to 20)")
    rtol: float = Field(DEFAULT_RTOL, gt=0,
                        description="allowed max |diff| against PyTorch, relative to the output's largest |value|, "
                                    "per layer and per sqrt(sequence length): "
                                    "atol + rtol * layers * sqrt(length) * max|output|")
    atol: float = Field(DEFAULT_ATOL, gt=0, description="absolute slack added to the relative bound (see rtol)")
    min_cosine: float = Field(DEFAULT_MIN_COSINE, gt=0, le=1,
                              description="min cosine similarity allowed against PyTorch (per example, per output)")
    include_teacher: bool = Field(False, description="also export the teacher (a baseline for bench)")
    optimize: bool = Field(False, description="also write model.optimized.onnx with ONNX Runtime's BERT fusions")
    bundle: bool = Field(False, description="also write bundle/: model files, tokenizer, labels, manifest.json, reference.py")
    max_length: int | None = Field(None, ge=8, le=8192,
                                   description="longest sequence the exported files promise (None: the model's own max sequence length, capped by its position embeddings)")

    @field_validator("formats", mode="before")
    @classmethod
    def _pte_is_executorch(cls, formats: object) -> object:
        """``pte`` (the format's former name, after its file suffix) reads as ``executorch``."""
        from export.heads import canonical_format

        return [canonical_format(f) if isinstance(f, str) else f for f in formats] if isinstance(formats, list) else formats

    @field_validator("formats")
    @classmethod
    def _no_duplicates(cls, formats: list[str]) -> list[str]:
        if len(set(formats)) != len(formats):
            raise ValueError(f"a format is listed twice in {formats}")
        return formats
