"""LiteRT (TensorFlow Lite) interpreter runner: ``.tflite`` files on CPU with XNNPACK, the interpreter's default.

A ``.tflite`` file from litert-torch has static shapes (its 0.10 release lowers no dynamic batch or sequence axis of
a BERT-family graph, and the interpreter cannot resize one), so edgepress writes one signature per sequence
length, ``len_<L>`` with batch 1. A feed runs row by row in the smallest signature that holds its padded length,
each row padded further with masked positions (attention_mask 0), and token outputs are cut back to the feed's
length. Any ``.tflite`` whose signatures take ``[1, L]`` integer inputs named like the tokenizer's works the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.runners.base import Runner
from compress.model.formats import install_hint

if TYPE_CHECKING:
    import numpy as np

LITERT_HINT = install_hint("litert")


def tflite_precision(path: Path) -> str | None:
    """What a ``.tflite`` file stores its weights in, read from the file: int8 when it holds int8 tensors
    (dynamic-range or full integer), fp16 when float16 ones, else fp32; None when it is not a loadable .tflite."""
    import numpy as np

    if Path(path).suffix.lower() != ".tflite":
        return None
    try:
        from ai_edge_litert.interpreter import Interpreter

        dtypes = {np.dtype(d["dtype"]).name for d in Interpreter(model_path=str(path)).get_tensor_details()}
    except (ImportError, ValueError, RuntimeError):
        return None
    return "int8" if "int8" in dtypes else "fp16" if "float16" in dtypes else "fp32"


class LiteRtCpuRunner(Runner):
    """ai_edge_litert's Interpreter with ``num_threads`` = intra-op threads and its default XNNPACK delegate; inputs
    padded to the file's static length bucket in ``prepare`` (outside the timed loop)."""

    backend = "litert"
    formats = ("litert",)
    device = "cpu"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("ai_edge_litert") is None:
            return f"the LiteRT interpreter (ai-edge-litert) is not installed: {LITERT_HINT}"
        return None

    def load(self) -> None:
        from benchmarks.remote_runner import LiteRTSession  # one bucketed session, here and on a remote device

        try:
            self.model = LiteRTSession(str(self.path), self.threads.intra_op)
        except ValueError as exc:
            from compress.core.errors import ModelLoadError

            raise ModelLoadError(f"the LiteRT interpreter cannot load '{self.path}': {exc}") from None
        self.input_names = list(self.model.input_names)
        self.output_names = list(self.model.output_names)

    def prepare(self, feeds: dict[str, "np.ndarray"]) -> Any:
        return self.model.prepare({k: v for k, v in feeds.items() if k in self.input_names})

    def run(self, prepared: Any) -> Any:
        return self.model.run_prepared(prepared)

    def outputs(self, prepared: Any) -> dict[str, "np.ndarray"]:
        return self.model.assemble(prepared, self.run(prepared))

    def describe(self) -> dict[str, Any]:
        import ai_edge_litert

        shapes = (f"static: one signature per sequence length {self.model.lengths} at batch {self.model.batch}; "
                  "a feed runs in the smallest length that holds it, padded with masked positions, "
                  f"{self.model.batch} row(s) per call")
        if self.model.truncated:
            shapes += f"; feeds longer than {self.model.lengths[-1]} tokens were cut to it"
        return {**super().describe(), "delegate": "XNNPACK (the interpreter's default)", "shapes": shapes,
                "ai_edge_litert": getattr(ai_edge_litert, "__version__", None)}
