"""ONNX Runtime runners: CPU, CUDA and TensorRT execution providers (also loads .ort files)."""

from __future__ import annotations

from typing import Any, ClassVar

from benchmarks.runners.base import Runner
from compress.core.errors import ModelLoadError
from compress.model.formats import install_hint


class OrtCpuRunner(Runner):
    """onnxruntime InferenceSession with intra/inter-op threads set on SessionOptions."""

    backend = "onnxruntime"
    formats = ("onnx", "ort")
    device = "cpu"
    providers: ClassVar[list[str]] = ["CPUExecutionProvider"]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return f"onnxruntime is not installed: {install_hint('onnx')}"
        missing = [p for p in cls.providers if p not in ort.get_available_providers()]
        if missing:
            return f"onnxruntime here has no {missing[0]} (available: {', '.join(ort.get_available_providers())})"
        return None

    def load(self) -> None:
        from benchmarks.sessions import open_session

        self.session = open_session(self.path, self.threads.intra_op, self.threads.inter_op, self.providers)
        used = self.session.get_providers()[0]
        if used != self.providers[0]:
            raise ModelLoadError(f"onnxruntime fell back to {used} instead of {self.providers[0]} for '{self.path}'")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, prepared: Any) -> Any:
        return self.session.run(None, prepared)

    def outputs(self, prepared: Any) -> dict[str, Any]:
        return dict(zip(self.output_names, self.session.run(None, prepared)))

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**super().describe(), "providers": self.providers, "onnxruntime": ort.__version__}


class OrtCudaRunner(OrtCpuRunner):
    """onnxruntime-gpu with the CUDA execution provider."""

    device = "cuda"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OrtTensorrtRunner(OrtCpuRunner):
    """onnxruntime-gpu with the TensorRT execution provider (CUDA, then CPU as fallbacks for unsupported nodes)."""

    device = "tensorrt"
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
