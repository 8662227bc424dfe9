"""OpenVINO runner: an IR (.xml + .bin) compiled on CPU for latency, reshaped to static length buckets.

OpenVINO's docs recommend the LATENCY performance hint with one stream for one-request-at-a-time inference, and
static shapes where the inputs allow: a BERT IR with dynamic [batch, sequence] inputs measured about 1.2-1.5x slower
than the same IR reshaped to the call's shape. Each compiled shape holds its own copy of the weights (a 3-layer
SST-2 student compiled for every distinct sentence length of a realistic bench held 1.2 GB), so, as an app would,
``prepare`` pads a feed to a length bucket (``length_bucket``: masked positions, at least ``SMALLEST_BUCKET``) and
compiles the model once per [batch, bucket] (outside the timed loop); token outputs are cut back to the feed's
length. ``predict`` (quality, not timed) runs one dynamic-shape compile instead of compiling
every eval batch's length. The inference precision is OpenVINO's CPU default unless asked: on CPUs with bf16
(AVX512-BF16, AMX) it computes fp32 files in bf16, as an app using the IR would; ``describe`` records the precision
the compiled model used, and the quality pass runs in it too. The bucketing and compiling are
``benchmarks.remote_runner.OpenVinoSession``'s, the same code a remote device runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from benchmarks.remote_runner import (OPENVINO_SHAPES, SMALLEST_BUCKET, OpenVinoSession,  # noqa: F401 (re-exported)
                                      length_bucket)
from benchmarks.remote_runner import openvino_reason as reason  # noqa: F401 (export.openvino_ir uses it)
from benchmarks.runners.base import Runner, Threads, task_output
from compress.core.errors import ModelLoadError
from compress.model.formats import install_hint

if TYPE_CHECKING:
    import numpy as np

OPENVINO_HINT = install_hint("openvino")


class Compiled(NamedTuple):
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
        return self.session.config()

    def load(self) -> None:
        weights = self.path.with_suffix(".bin")
        if not weights.is_file():
            raise ModelLoadError(f"OpenVINO IR '{self.path}' has no weights file '{weights.name}' beside it; copy "
                                 "the .bin written with the .xml into the same folder")
        try:
            self.session = OpenVinoSession(str(self.path), self.threads.intra_op, self.inference_precision)
        except ValueError as exc:
            raise ModelLoadError(f"openvino cannot read '{self.path}': {exc}") from None
        self.core, self.model = self.session.core, self.session.model
        self.input_names = list(self.session.input_names)
        self.dtypes = dict(self.session.dtypes)
        self.output_names = list(self.session.output_names)

    @property
    def _static(self) -> dict[tuple[tuple[int, ...], ...], Any]:
        """The compiled models by static input shapes (one per [batch, bucket])."""
        return self.session.compiled

    def compiled_for(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        """The model compiled for these static input shapes (in ``input_names`` order), compiled once and kept."""
        return self.session.compiled_for(shapes)

    def prepare(self, feeds: dict[str, "np.ndarray"]) -> Compiled:
        """The feeds padded to their length bucket (attention mask 0) and a request of the model compiled for it."""
        return Compiled(*self.session.prepare(feeds))

    def run(self, prepared: Compiled) -> Any:
        return self.session.run_prepared(prepared)

    def outputs(self, prepared: Compiled) -> dict[str, "np.ndarray"]:
        """Named outputs, per-token ones cut back to the feed's own length."""
        return self.session.assemble(prepared)

    def predict(self, feeds: dict[str, "np.ndarray"]) -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
        """Task output from the dynamic-shape compile: eval batches have many lengths, none of them timed."""
        import numpy as np

        got = self.session.compiled_dynamic()({n: np.asarray(feeds[n], dtype=self.dtypes[n]) for n in self.input_names})
        outs = {n: got[n] for n in self.output_names}
        return task_output(self.task, outs, feeds["attention_mask"], getattr(self, "pooling", None))

    def describe(self) -> dict[str, Any]:
        """Adds the openvino version and the settings a compiled model reports (not the ones asked for)."""
        import openvino as ov

        out = {**super().describe(), "openvino": ov.get_version(),
               "shapes": OPENVINO_SHAPES}
        if hasattr(self, "session") and "hints" in (done := self.session.describe()):
            out["hints"] = done["hints"]
        return out
