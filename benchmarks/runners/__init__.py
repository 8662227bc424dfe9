"""Runner registry: one small class per backend, looked up by (format, device); each export format names its
runners in its ``FormatSpec`` (compress/model/formats.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from compress.core.errors import EdgepressError
from compress.model.formats import FORMATS as EXPORT_FORMATS
from compress.core.refs import resolve
from compress.model.formats import FormatTable, Names, runner_refs

FORMATS = Names(lambda: EXPORT_FORMATS, lead=("pytorch",))  # what bench measures: PyTorch + every export format
DEVICES = ("cpu", "cuda", "tensorrt")

# (device, "module:Class") of the pytorch folder's runners; every export format's come from its FormatSpec. Imported
# only when used so `import benchmarks` stays light.
PYTORCH_RUNNERS = (("cpu", "benchmarks.runners.torch_runner:TorchEagerRunner"),
                   ("cuda", "benchmarks.runners.torch_runner:TorchCudaFp16Runner"))
UNSUPPORTED: Mapping[str, str] = FormatTable("untimed")  # format -> why no runner here can measure it


def runners() -> dict[tuple[str, str], str]:
    """(format, device) -> "module:Class" of every runner: PyTorch's, then the registry's, read at each call."""
    return {**{("pytorch", device): ref for device, ref in PYTORCH_RUNNERS}, **runner_refs()}


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
ONNX_IN_FOLDER = ("model.onnx", "onnx/model.onnx", "model_quantized.onnx")
OPENVINO_IN_FOLDER = "openvino_model.xml"  # optimum-intel's and `edgepress export`'s openvino/ folder


def locate(path: Path) -> tuple[str, Path]:
    """(format, the file or folder a runner loads) for a model path.

    A save_pretrained folder with weights is ``pytorch`` (a sentence-transformers folder too); an optimum
    export folder (config.json + model.onnx) or a sentence-transformers ONNX layout (onnx/model.onnx) is its
    ONNX file (a folder holding several different ones, such as optimum's model.onnx + model_quantized.onnx, is
    refused rather than guessed; one file under two names counts once); a folder holding openvino_model.xml (and no
    ONNX file) is that OpenVINO IR; a file is judged by its suffix (an IR's .xml needs its .bin beside it).
    """
    path = Path(path)
    if path.is_dir() and path.suffix.lower() == ".mlpackage":  # a Core ML package is a folder
        return "coreml", path
    if path.is_dir():
        if (path / "config.json").is_file() and any((path / w).is_file() for w in WEIGHT_FILES):
            return "pytorch", path
        found: list[Path] = []
        for f in (path / name for name in ONNX_IN_FOLDER if (path / name).is_file()):
            if not any(_same_bytes(f, kept) for kept in found):  # final/onnx: onnx/model.onnx is model.onnx
                found.append(f)
        if len(found) > 1:
            names = " and ".join(str(f.relative_to(path)) for f in found)
            raise EdgepressError(f"'{path}' holds {names}: pass the file to measure, e.g. '{found[-1]}'")
        if found and (path / OPENVINO_IN_FOLDER).is_file():
            raise EdgepressError(f"'{path}' holds {found[0].name} and {OPENVINO_IN_FOLDER}: pass the file to measure")
        if found:
            return "onnx", found[0]
        if (path / OPENVINO_IN_FOLDER).is_file():
            return "openvino", _ir_with_weights(path / OPENVINO_IN_FOLDER)
        raise EdgepressError(f"'{path}' is a folder with neither model weights (config.json + model.safetensors) nor "
                             f"an ONNX file ({', '.join(ONNX_IN_FOLDER)}) nor an OpenVINO IR ({OPENVINO_IN_FOLDER}); "
                             "pass a save_pretrained folder, an optimum export folder or a model file")
    by_suffix = {".onnx": "onnx", ".ort": "ort", ".pt": "torchscript", ".pth": "torchscript", ".ptl": "ptl", ".pte": "executorch",
                 ".xml": "openvino", ".tflite": "litert"}
    fmt = by_suffix.get(path.suffix.lower())
    if fmt is None:
        raise EdgepressError(f"cannot tell the format of '{path}': expected a model folder or "
                             f"one of {', '.join(sorted(by_suffix))}")
    return fmt, (_ir_with_weights(path) if fmt == "openvino" else path)


def _ir_with_weights(xml: Path) -> Path:
    """An OpenVINO IR's .xml, refused in one line when its weights (.bin of the same name) are not beside it."""
    if not xml.with_suffix(".bin").is_file():
        raise EdgepressError(f"OpenVINO IR '{xml}' has no weights file '{xml.with_suffix('.bin').name}' beside it; "
                             "keep the .bin written with the .xml in the same folder")
    return xml


def _same_bytes(a: Path, b: Path) -> bool:
    """One file under two names: a hard link, or a copy with identical bytes."""
    import filecmp
    import os

    return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)


def detect_format(path: Path) -> str:
    """Format of a model path (see ``locate``)."""
    return locate(path)[0]


def runner_class(fmt: str, device: str = "cpu") -> type:
    """The runner class for a format on a device; EdgepressError names what is supported."""
    if fmt in UNSUPPORTED:
        raise EdgepressError(UNSUPPORTED[fmt])
    table = runners()
    if (fmt, device) not in table:
        known = ", ".join(f"{f}@{d}" for f, d in table)
        raise EdgepressError(f"no runner for format '{fmt}' on device '{device}'; supported: {known}")
    return resolve(table[fmt, device])


def skip_reason(fmt: str, device: str = "cpu") -> str | None:
    """Why (format, device) cannot be measured here, or None."""
    try:
        cls = runner_class(fmt, device)
    except EdgepressError as exc:
        return str(exc)
    return cls.unavailable_reason()
