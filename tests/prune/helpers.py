"""Test helpers for pruning: a plain torch.onnx export (dynamo=False) and an ONNX Runtime run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class _FirstOutput(torch.nn.Module):
    """Wrap an HF model so the export sees tensors in and one tensor out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def onnx_parity(model: torch.nn.Module, enc: dict[str, torch.Tensor], path: Path) -> float:
    """Export ``model`` to ONNX at ``path`` and return max |ORT - PyTorch| on ``enc``."""
    import onnxruntime as ort

    wrapped = _FirstOutput(model).eval()
    args = (enc["input_ids"], enc["attention_mask"])
    torch.onnx.export(wrapped, args, str(path), input_names=["input_ids", "attention_mask"], output_names=["out"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}},
                      opset_version=17, dynamo=False)
    with torch.inference_mode():
        ref = wrapped(*args).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": args[0].numpy(), "attention_mask": args[1].numpy()})[0]
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max())
