"""ONNX Runtime sessions: the one place a host-side InferenceSession is made.

The options themselves live in ``remote_runner.make_session`` (stdlib-only at import, copied to devices), so
the quantizer's guard, the export parity check, the harness runners and a phone all load a model alike:
errors-only logging, explicit intra/inter-op threads (0 = ORT's default), sequential execution, every graph
optimisation. This module adds what the host needs: a load failure raised as an edgepress error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from compress.core.errors import EdgepressError, ModelLoadError

if TYPE_CHECKING:
    import onnxruntime as ort

CPU = ["CPUExecutionProvider"]


def open_session(path: Path | str, intra: int | None = 0, inter: int | None = 0,
                 providers: list[str] | None = None) -> "ort.InferenceSession":
    """An InferenceSession for ``path`` (.onnx/.ort); a file ONNX Runtime refuses raises ModelLoadError naming it."""
    from benchmarks.remote_runner import make_session

    try:
        return make_session(str(path), intra, inter, providers or CPU)
    except Exception as exc:  # onnxruntime raises Fail / InvalidGraph / NoSuchFile / InvalidProtobuf
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"onnxruntime cannot load '{path}': {first}") from None


def input_names(sess: "ort.InferenceSession") -> list[str]:
    """The session's input names; an encoder without ``input_ids`` is not a model this tool feeds text to."""
    names = [i.name for i in sess.get_inputs()]
    if "input_ids" not in names:
        raise EdgepressError(f"ONNX model inputs are {names}; expected input_ids/attention_mask[/token_type_ids] "
                             "(see docs/architecture.md 'ONNX model interface')")
    return names


def output_names(sess: "ort.InferenceSession") -> list[str]:
    return [o.name for o in sess.get_outputs()]
