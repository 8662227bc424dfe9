"""Export formats and the runtimes that run them: one ``FormatSpec`` per format, read by every layer.

A spec owns what the toolkit knows of one format: the runtime that runs it and how apps use it, the package and
``edgepress[<extra>]`` that install it, the file an export writes and its extra precisions (the export stage's
output keys), which stages take it (the quantize guard, the search, ``final/``'s runtime folders, the mobile
bundle), its writer and its bench runners. Writers and runners are "module:name" strings imported when used, so
this module imports nothing of the project but its errors and every layer may read it. Adding a runtime is one
entry in ``FORMAT_SPECS`` plus its writer and runner; ``benchmarks/remote_runner.py`` (stdlib-only, copied to
devices) keeps its own short table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload


@dataclass(frozen=True)
class FormatSpec:
    """Everything the toolkit knows about one export format and the runtime that runs it."""

    name: str
    runtime: str  # what runs it: onnxruntime | openvino | litert | executorch | coreml | torch
    title: str  # the runtime's name for people (a runtime folder's manifest)
    platforms: str  # where apps use it
    app_runtime: str  # the app-side runtime, as the bundle's manifest describes it
    package: str  # the Python package that runs it (its pip name)
    file: str  # the file an export folder holds it in
    extra: str = ""  # the edgepress[<extra>] that installs its package; "" when the core does
    precision: str = "fp32"  # what its main file computes in
    precisions: tuple[str, ...] = ()  # quantized / fp16 siblings the writer adds (output keys <name>_<precision>)
    own_folder: bool = False  # final/ ships it in a folder of its own (final/<name>/ with a manifest)
    guard_scores: bool = False  # the quantize guard scores its files on the eval rows beside the ONNX files
    search_rank: int = 0  # its runtime's place in search.runtimes (1 first); 0: the search does not time it
    mobile: bool = False  # a PyTorch-side mobile file the bundle carries as fp32 when export.formats lists it
    writer: str = ""  # "module:function" (prep, onnx_path, path, done) -> None; "": written first by every export
    preflight: str = ""  # "module:function" () -> None raising when it cannot be written here
    calibrates: bool = False  # its INT8 file is calibrated on text (the run's train split)
    runners: tuple[tuple[str, str], ...] = ()  # (device, "module:Class") of the bench runners that time it
    untimed: str = ""  # why no runner here times it (bench's one-line refusal); "" when one does
    untimed_why: str = ""  # the same as a clause, for the search's refusal

    @property
    def output_keys(self) -> tuple[str, ...]:
        """The export stage's output keys for this format: ``<name>`` and ``<name>_<precision>`` per sibling."""
        return (self.name, *(f"{self.name}_{p}" for p in self.precisions))


ORT_RUNNERS = "benchmarks.runners.ort_runner"
TORCH_RUNNERS = "benchmarks.runners.torch_runner"

FORMAT_SPECS: dict[str, FormatSpec] = {s.name: s for s in [
    FormatSpec("onnx", "onnxruntime", "ONNX Runtime", "servers, desktops, Android, iOS and browsers",
               "ONNX Runtime (onnxruntime-android, onnxruntime-objc / onnxruntime-c on iOS, onnxruntime on desktop)",
               "onnxruntime", "model.onnx", search_rank=1,
               runners=(("cpu", f"{ORT_RUNNERS}:OrtCpuRunner"), ("cuda", f"{ORT_RUNNERS}:OrtCudaRunner"),
                        ("tensorrt", f"{ORT_RUNNERS}:OrtTensorrtRunner"))),
    FormatSpec("torchscript", "torch", "TorchScript", "servers and desktops through libtorch",
               "libtorch torch.jit.load (TorchScript: maintenance mode upstream)", "torch", "model.pt", mobile=True,
               writer="export.writer:write_torchscript", runners=(("cpu", f"{TORCH_RUNNERS}:TorchScriptRunner"),)),
    FormatSpec("ptl", "torch", "PyTorch Mobile lite interpreter", "Android and iOS (maintenance mode upstream)",
               "PyTorch Mobile lite interpreter (pytorch_android_lite / LibTorch-Lite: maintenance mode, use ExecuTorch)",
               "torch", "model.ptl", mobile=True, writer="export.writer:write_ptl",
               runners=(("cpu", f"{TORCH_RUNNERS}:TorchScriptRunner"),)),
    FormatSpec("ort", "onnxruntime", "ONNX Runtime mobile format", "Android and iOS (onnxruntime-mobile builds)",
               "ONNX Runtime mobile format (full package, or a reduced build from required_operators.config)",
               "onnxruntime", "model.ort", writer="export.writer:write_ort",
               runners=(("cpu", f"{ORT_RUNNERS}:OrtCpuRunner"),)),
    FormatSpec("executorch", "executorch", "ExecuTorch (XNNPACK backend)",
               "Android, iOS and embedded devices: PyTorch's on-device runtime",
               "ExecuTorch runtime with the XNNPACK backend", "executorch", "model.pte", extra="executorch",
               own_folder=True, guard_scores=True, search_rank=4, mobile=True, writer="export.writer:write_pte",
               preflight="export.writer:pte_ready",
               runners=(("cpu", "benchmarks.runners.executorch_runner:ExecuTorchCpuRunner"),)),
    FormatSpec("litert", "litert", "LiteRT (formerly TensorFlow Lite)", "Android (ML Kit, MediaPipe), embedded Linux",
               "LiteRT (TensorFlow Lite) interpreter with XNNPACK", "ai-edge-litert", "litert/model.tflite",
               extra="litert", precisions=("fp16", "int8"), own_folder=True, guard_scores=True, search_rank=3,
               writer="export.litert:write_litert", preflight="export.litert:litert_ready",
               runners=(("cpu", "benchmarks.runners.litert_runner:LiteRtCpuRunner"),)),
    FormatSpec("openvino", "openvino", "OpenVINO", "Intel CPUs, GPUs and NPUs (edge boxes, PCs, servers)",
               "OpenVINO Runtime", "openvino", "openvino/openvino_model.xml", extra="openvino", precisions=("int8",),
               own_folder=True, guard_scores=True, search_rank=2, writer="export.openvino_ir:write_openvino",
               preflight="export.openvino_ir:openvino_ready", calibrates=True,
               runners=(("cpu", "benchmarks.runners.openvino_runner:OpenVinoCpuRunner"),)),
    FormatSpec("coreml", "coreml", "Core ML", "iOS and macOS", "Core ML (iOS / macOS)", "coremltools",
               "coreml/model.mlpackage", extra="coreml", precision="fp16", precisions=("int8",), own_folder=True,
               guard_scores=True, writer="export.coreml:write_coreml", preflight="export.coreml:coreml_ready",
               untimed="Core ML .mlpackage files run only on Apple devices (macOS / iOS); they are not timed here: "
                       "measure them on the Mac or iPhone with Xcode's Core ML performance report",
               untimed_why="it runs only on Apple devices"),
]}


class Names(Sequence[str]):
    """Names read from ``FORMAT_SPECS`` at each use, after ``lead``: a format registered after import (a plug-in,
    a test) is seen, where a tuple built at import would miss it."""

    def __init__(self, compute: Callable[[], Iterable[str]], lead: tuple[str, ...] = ()) -> None:
        self.compute = compute
        self.lead = lead

    def _names(self) -> list[str]:
        return [*self.lead, *self.compute()]

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __repr__(self) -> str:
        return repr(tuple(self._names()))


class FormatTable(Mapping[str, Any]):
    """One field of every registered format that sets it (a non-empty value), by format name, read at each lookup."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __getitem__(self, name: str) -> Any:
        value = getattr(FORMAT_SPECS[name], self.field) if name in FORMAT_SPECS else None
        if not value:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, s in FORMAT_SPECS.items() if getattr(s, self.field)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class SearchRuntimes(Mapping[str, str]):
    """Runtime name -> the format the search writes in every branch and times in it, in ``search_rank`` order."""

    def _table(self) -> dict[str, str]:
        ranked = sorted((s for s in FORMAT_SPECS.values() if s.search_rank), key=lambda s: s.search_rank)
        return {s.runtime: s.name for s in ranked}

    def __getitem__(self, runtime: str) -> str:
        return self._table()[runtime]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


FORMATS: Sequence[str] = Names(lambda: FORMAT_SPECS)  # every export format, in order
SEARCH_RUNTIMES: Mapping[str, str] = SearchRuntimes()


def formats_with(field: str) -> Sequence[str]:
    """The formats whose ``field`` is set (``own_folder``, ``guard_scores``, ``mobile``...), read at each use."""
    return Names(lambda: [n for n, s in FORMAT_SPECS.items() if getattr(s, field)])


def format_spec(name: str) -> FormatSpec:
    """The spec of export format ``name``; an unknown name is a one-line error naming the closest format."""
    from compress.core.errors import ConfigError, closest_name

    if name not in FORMAT_SPECS:
        close = closest_name(name, FORMAT_SPECS)
        hint = f"did you mean '{close}'? " if close else ""
        raise ConfigError(f"unknown export format '{name}': {hint}formats: {', '.join(FORMAT_SPECS)}")
    return FORMAT_SPECS[name]


def runtime_of(fmt: str) -> str:
    """The runtime that runs a format (``onnx`` and ``ort`` files: onnxruntime); a name outside the registry
    (``pytorch``) is its own runtime."""
    return FORMAT_SPECS[fmt].runtime if fmt in FORMAT_SPECS else fmt


def install_hint(fmt: str) -> str:
    """The ``pip install`` that makes a format's runtime available: its edgepress extra, else its package."""
    spec = format_spec(fmt)
    return f"pip install 'edgepress[{spec.extra}]'" if spec.extra else f"pip install {spec.package}"


def export_output_keys() -> list[str]:
    """The export stage's output keys of every format it writes after model.onnx, in registry order."""
    return [key for s in FORMAT_SPECS.values() if s.writer for key in s.output_keys]


def runner_refs() -> dict[tuple[str, str], str]:
    """(format, device) -> "module:Class" of every registered format's bench runners."""
    return {(s.name, device): ref for s in FORMAT_SPECS.values() for device, ref in s.runners}
