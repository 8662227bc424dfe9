"""OpenVINO runner: an IR (.xml + .bin) compiled on CPU for latency, reshaped to static length buckets.

OpenVINO's docs recommend the LATENCY performance hint with one stream for one-request-at-a-time inference, and
static shapes where the inputs allow: a BERT IR with dynamic [batch, sequence] inputs measured about 1.2-1.5x slower
than the same IR reshaped to the call's shape. Each compiled shape holds its own copy of the weights (a 3-layer
SST-2 student compiled for every distinct sentence length of a realistic bench held 1.2 GB), so, as an app would,
``prepare`` pads a feed to a power-of-two length bucket (masked positions, at least ``SMALLEST_BUCKET`` tokens) and
compiles the model once per [batch, bucket] (outside the timed loop); token outputs are cut back to the feed's
length. ``predict`` (quality, not timed) runs one dynamic-shape compile instead of compiling
every eval batch's length. The inference precision is OpenVINO's CPU default unless asked: on CPUs with bf16
(AVX512-BF16, AMX) it computes fp32 files in bf16, as an app using the IR would; ``describe`` records the precision
the compiled model used, and the quality pass runs in it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.remote_runner import TOKEN_SCORES
from benchmarks.runners.base import Runner, Threads, task_output
from compress.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

OPENVINO_HINT = "pip install 'edgepress[openvino]'"
SMALLEST_BUCKET = 16


def length_bucket(length: int) -> int:
    """The static sequence length a feed of ``length`` tokens runs at: the next power of two, at least 16."""
    bucket = SMALLEST_BUCKET
    while bucket < length:
        bucket *= 2
    return bucket


def reason(exc: BaseException) -> str:
    """OpenVINO's message without its "Exception from src/...cpp:N:" location lines, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from ")]
    return " ".join(lines)[:300] or type(exc).__name__


@dataclass(frozen=True)
class Compiled:
    """What ``prepare`` returns: the infer request of the model compiled for these feeds' bucket, the padded feeds
    and the feeds' own length."""

    request: Any
    feeds: dict[str, "np.ndarray"]
    length: int


class OpenVinoCpuRunner(Runner):
    """openvino.Core on CPU: LATENCY hint, one stream, ``Threads.intra_op`` as INFERENCE_NUM_THREADS; the CPU's default
    inference precision, or ``inference_precision`` ("f32", "bf16") when given."""

    backend = "openvino"
    formats = ("openvino",)
    device = "cpu"

    def __init__(self, path: Path, task: str, threads: Threads | None = None,
                 inference_precision: str | None = None) -> None:
        super().__init__(path, task, threads)
        self.inference_precision = inference_precision

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("openvino") is None:
            return f"openvino is not installed: {OPENVINO_HINT}"
        return None

    def config(self) -> dict[str, Any]:
        """The compile properties: the latency hint, one stream, the intra-op threads and precision when set."""
        import openvino.properties as props
        import openvino.properties.hint as hints

        cfg: dict[str, Any] = {hints.performance_mode: hints.PerformanceMode.LATENCY, props.num_streams: 1}
        if self.inference_precision is not None:
            cfg[hints.inference_precision] = self.inference_precision
        if self.threads.intra_op is not None:
            cfg[props.inference_num_threads] = self.threads.intra_op
        return cfg

    def load(self) -> None:
        import openvino as ov

        weights = self.path.with_suffix(".bin")
        if not weights.is_file():
            raise ModelLoadError(f"OpenVINO IR '{self.path}' has no weights file '{weights.name}' beside it; copy "
                                 "the .bin written with the .xml into the same folder")
        self.core = ov.Core()
        try:
            self.model = self.core.read_model(str(self.path))
        except RuntimeError as exc:
            raise ModelLoadError(f"openvino cannot read '{self.path}': {reason(exc)}") from None
        self.input_names = [i.get_any_name() for i in self.model.inputs]
        self.dtypes = {i.get_any_name(): i.get_element_type().to_dtype() for i in self.model.inputs}
        self.output_names = [o.get_any_name() for o in self.model.outputs]
        self._static: dict[tuple[tuple[int, ...], ...], Any] = {}
        self._dynamic: Any = None

    def compiled_for(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        """The model compiled for these static input shapes (in ``input_names`` order), compiled once and kept."""
        if shapes not in self._static:
            model = self.model.clone()
            model.reshape(dict(zip(self.input_names, [list(s) for s in shapes])))
            self._static[shapes] = self.core.compile_model(model, "CPU", self.config())
        return self._static[shapes]

    def prepare(self, feeds: dict[str, "np.ndarray"]) -> Compiled:
        """The feeds padded to their length bucket (attention mask 0) and a request of the model compiled for it."""
        import numpy as np

        length = int(feeds[self.input_names[0]].shape[1])
        pad = length_bucket(length) - length
        arrays = {n: np.ascontiguousarray(np.pad(feeds[n], ((0, 0), (0, pad))), dtype=self.dtypes[n])
                  for n in self.input_names}
        compiled = self.compiled_for(tuple(tuple(arrays[n].shape) for n in self.input_names))
        return Compiled(compiled.create_infer_request(), arrays, length)

    def run(self, prepared: Compiled) -> Any:
        return prepared.request.infer(prepared.feeds, share_inputs=True)

    def outputs(self, prepared: Compiled) -> dict[str, "np.ndarray"]:
        """Named outputs, per-token ones cut back to the feed's own length."""
        got = prepared.request.infer(prepared.feeds)
        outs = {}
        for n in self.output_names:
            value = got[n]
            per_token = value.ndim >= 3 or n in TOKEN_SCORES
            outs[n] = value[:, :prepared.length] if per_token else value
        return outs

    def predict(self, feeds: dict[str, "np.ndarray"]) -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
        """Task output from the dynamic-shape compile: eval batches have many lengths, none of them timed."""
        import numpy as np

        if self._dynamic is None:
            self._dynamic = self.core.compile_model(self.model, "CPU", self.config())
        got = self._dynamic({n: np.asarray(feeds[n], dtype=self.dtypes[n]) for n in self.input_names})
        outs = {n: got[n] for n in self.output_names}
        return task_output(self.task, outs, feeds["attention_mask"], getattr(self, "pooling", None))

    def describe(self) -> dict[str, Any]:
        """Adds the openvino version and the settings a compiled model reports (not the ones asked for)."""
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        out = {**super().describe(), "openvino": ov.get_version(), "shapes": f"static: padded to power-of-two length buckets (at least {SMALLEST_BUCKET}), one "
                                                          "compile per [batch, bucket]"}
        compiled = next(iter(self._static.values()), self._dynamic) if hasattr(self, "_static") else None
        if compiled is not None:
            values = {k: compiled.get_property(k) for k in (hints.performance_mode, props.num_streams,
                                                            props.inference_num_threads, hints.inference_precision)}
            out["hints"] = {k: v.to_string() if isinstance(v, ov.Type) else str(v) for k, v in values.items()}
        return out
