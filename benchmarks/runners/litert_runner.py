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

from benchmarks.runners.base import STANDARD_INPUTS, Runner
from compress.errors import EdgepressError

if TYPE_CHECKING:
    import numpy as np

LITERT_HINT = "pip install 'edgepress[litert]'"


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


class BucketedTflite:
    """A ``.tflite`` file's signatures as length buckets: run numpy int feeds of any batch and length ≤ the largest
    bucket, get the outputs by name with the feed's batch and length."""

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.buckets: dict[int, Any] = {}  # sequence length -> signature runner
        self.batch = 1
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self.dtypes: dict[str, Any] = {}
        for name in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(name)
            inputs = runner.get_input_details()
            shapes = {tuple(int(d) for d in v["shape"]) for v in inputs.values()}
            if len(shapes) != 1 or len(next(iter(shapes))) != 2:
                raise EdgepressError(f"'{path}': signature '{name}' takes inputs of shapes {sorted(shapes)}; expected "
                                     "one [batch, sequence] shape for every input (a BERT-style file)")
            self.batch, length = next(iter(shapes))
            self.buckets[length] = runner
            order = {n: i for i, n in enumerate(STANDARD_INPUTS)}
            self.input_names = sorted(inputs, key=lambda n: (order.get(n, len(order)), n))
            self.dtypes = {n: v["dtype"] for n, v in inputs.items()}
            self.output_names = list(runner.get_output_details())
        if not self.buckets:
            raise EdgepressError(f"'{path}' has no signature to call; write it with signatures (litert-torch does)")
        self.lengths = sorted(self.buckets)
        self.sequence_outputs = self._sequence_outputs()

    def _sequence_outputs(self) -> set[str]:
        """Outputs with a sequence axis (dim 1 equals the signature's length in every signature)."""
        seq = set(self.output_names)
        for length, runner in self.buckets.items():
            details = runner.get_output_details()
            seq &= {n for n, d in details.items() if len(d["shape"]) >= 2 and int(d["shape"][1]) == length}
        return seq

    def bucket(self, length: int) -> int:
        """The smallest signature length that holds ``length`` (the largest when none does)."""
        return next((b for b in self.lengths if b >= length), self.lengths[-1])

    def rows(self, feeds: dict[str, "np.ndarray"]) -> tuple[int, int, list[dict[str, "np.ndarray"]]]:
        """(bucket length, feed length, per-call inputs): rows in chunks of the file's batch, padded (mask 0)
        or cut to the bucket, cast to the file's integer type."""
        import numpy as np

        first = feeds[self.input_names[0]]
        n, length = int(first.shape[0]), int(first.shape[1])
        size = self.bucket(length)
        keep = min(length, size)
        calls = []
        for start in range(0, n, self.batch):
            call = {}
            for name in self.input_names:
                block = np.zeros((self.batch, size), dtype=self.dtypes[name])
                part = feeds[name][start:start + self.batch, :keep]
                block[:part.shape[0], :keep] = part
                call[name] = block
            calls.append(call)
        return size, length, calls

    def run_rows(self, size: int, calls: list[dict[str, "np.ndarray"]]) -> list[dict[str, "np.ndarray"]]:
        """Every call through the bucket's signature (the timed part)."""
        runner = self.buckets[size]
        return [runner(**call) for call in calls]

    def assemble(self, n: int, length: int, size: int, results: list[dict[str, "np.ndarray"]]) -> dict[str, "np.ndarray"]:
        """The calls' outputs as one batch of ``n`` rows, token outputs cut (or zero-padded) to ``length``."""
        import numpy as np

        out = {}
        for name in self.output_names:
            whole = np.concatenate([r[name] for r in results])[:n]
            if name in self.sequence_outputs and length != size:
                if length < size:
                    whole = whole[:, :length]
                else:
                    pad = [(0, 0)] * whole.ndim
                    pad[1] = (0, length - size)
                    whole = np.pad(whole, pad)
            out[name] = whole
        return out

    def __call__(self, feeds: dict[str, "np.ndarray"]) -> dict[str, "np.ndarray"]:
        size, length, calls = self.rows(feeds)
        n = int(feeds[self.input_names[0]].shape[0])
        return self.assemble(n, length, size, self.run_rows(size, calls))


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
        try:
            self.model = BucketedTflite(self.path, self.threads.intra_op)
        except ValueError as exc:
            from compress.errors import ModelLoadError

            raise ModelLoadError(f"the LiteRT interpreter cannot load '{self.path}': {exc}") from None
        self.input_names = list(self.model.input_names)
        self.output_names = list(self.model.output_names)
        self.truncated = False

    def prepare(self, feeds: dict[str, "np.ndarray"]) -> Any:
        size, length, calls = self.model.rows({k: v for k, v in feeds.items() if k in self.input_names})
        self.truncated = self.truncated or length > size
        return int(feeds[self.input_names[0]].shape[0]), length, size, calls

    def run(self, prepared: Any) -> Any:
        _, _, size, calls = prepared
        return self.model.run_rows(size, calls)

    def outputs(self, prepared: Any) -> dict[str, "np.ndarray"]:
        n, length, size, _ = prepared
        return self.model.assemble(n, length, size, self.run(prepared))

    def describe(self) -> dict[str, Any]:
        import ai_edge_litert

        shapes = (f"static: one signature per sequence length {self.model.lengths} at batch {self.model.batch}; "
                  "a feed runs in the smallest length that holds it, padded with masked positions, "
                  f"{self.model.batch} row(s) per call")
        if self.truncated:
            shapes += f"; feeds longer than {self.model.lengths[-1]} tokens were cut to it"
        return {**super().describe(), "delegate": "XNNPACK (the interpreter's default)", "shapes": shapes,
                "ai_edge_litert": getattr(ai_edge_litert, "__version__", None)}
