"""Our own parity check: run an exported file and eager PyTorch on real tokenized text, compare, raise.

Optimum only warns on a mismatch; here a file past tolerance is an error (``ParityError``)
and the numbers (max absolute difference, its size relative to the output, minimum cosine) become
stage metrics. The allowed difference scales with the output's magnitude, the model's depth and the
sequence length (``Tolerance``), so a correct 6-layer model at length 256 passes while a wrong pooling
or a wrong activation function still fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from export.errors import ParityError

if TYPE_CHECKING:
    import numpy as np
    import torch

Batch = dict[str, "np.ndarray"]
Runner = Callable[[Batch], list["np.ndarray"]]

# fp32 round-off (2**-24 = 6e-8) grows with the terms summed in attention (~sqrt(length)) and compounds
# layer by layer. Measured on correct exports (docs/export.md), the worst |diff| / max|output| per
# layer per sqrt(token) was 1.9e-7 (MiniLM-L6, padded positions at length 256); RTOL allows 10x that.
# A tanh-approximated GELU measured 1.1e-5..1.3e-4 per unit, a wrong pooling above 1e-2: both still fail.
DEFAULT_RTOL = 2e-6
DEFAULT_ATOL = 1e-6
DEFAULT_MIN_COSINE = 0.9999

_SHORT = "The cat sat."
_MEDIUM = "Exported models must agree with PyTorch on every sentence, padded or not, short or long."


def parity_texts() -> list[str]:
    """Real sentences of clearly different lengths (from the Python docs bundled with CPython)."""
    from compress.data.rows import builtin_pydoc_sentences

    sents = builtin_pydoc_sentences(min_words=5, max_words=40)
    long_text = " ".join(sents[:40])  # longer than any max_length: exercises truncation
    return [_SHORT, _MEDIUM, sents[len(sents) // 2], long_text]


def parity_groups() -> list[list[str]]:
    """The text groups every parity check runs: each text alone (batch 1), then all together padded (batch 4)."""
    texts = parity_texts()
    return [[t] for t in texts] + [texts]


def encode_batch(tokenizer: Any, texts: list[str], input_names: list[str], max_length: int) -> Batch:
    """int64 numpy inputs for ``texts`` (padded to the longest, truncated at ``max_length``)."""
    import numpy as np

    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return {n: np.asarray(enc[n], dtype=np.int64) if n in enc else np.zeros_like(enc["input_ids"], dtype=np.int64)
            for n in input_names}


def parity_batches(tokenizer: Any, input_names: list[str], max_length: int) -> list[Batch]:
    """Batches of several sequence lengths: each text alone (batch 1) and all together padded (batch 4)."""
    return [encode_batch(tokenizer, group, input_names, max_length) for group in parity_groups()]


def example_batch(tokenizer: Any, input_names: list[str], max_length: int) -> Batch:
    """A padded batch of 2 real sentences used as the trace / export example (not a parity case on its own)."""
    import numpy as np

    enc = tokenizer([_MEDIUM, _SHORT], padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return {n: np.asarray(enc[n], dtype=np.int64) if n in enc else np.zeros_like(enc["input_ids"], dtype=np.int64)
            for n in input_names}


def torch_runner(module: "torch.nn.Module", input_names: list[str]) -> Runner:
    """Run a wrapper module (positional int64 inputs, tuple outputs) on numpy batches."""
    import torch

    def run(batch: Batch) -> list["np.ndarray"]:
        with torch.inference_mode():
            outs = module(*[torch.from_numpy(batch[n]) for n in input_names])
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return [o.detach().float().numpy() for o in outs]

    return run


def onnx_runner(path: str, output_names: list[str]) -> Runner:
    """Run an .onnx or .ort file in ONNX Runtime (CPU), returning outputs in ``output_names`` order."""
    from benchmarks.sessions import open_session

    sess = open_session(path)
    feeds = [i.name for i in sess.get_inputs()]

    def run(batch: Batch) -> list["np.ndarray"]:
        return sess.run(output_names, {n: batch[n] for n in feeds})

    return run


@dataclass(frozen=True)
class Tolerance:
    """How far an exported file may be from PyTorch: per output and batch,
    |diff| <= atol + rtol * depth * sqrt(length) * max|ref|, and every example's cosine >= min_cosine."""

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    min_cosine: float = DEFAULT_MIN_COSINE
    depth: int = 1  # transformer layers of the model

    def allowed(self, max_ref: float, length: int) -> float:
        """The largest |diff| allowed for an output whose largest |value| is ``max_ref``, at sequence ``length``."""
        return self.atol + self.rtol * max(self.depth, 1) * math.sqrt(max(length, 1)) * max_ref


def compare(reference: list["np.ndarray"], candidate: list["np.ndarray"], names: list[str]) -> dict[str, Any]:
    """Max absolute difference, minimum cosine similarity (per example, per output) and, per output name,
    the max |diff| and the largest |value| of the reference."""
    import numpy as np

    max_abs, min_cos = 0.0, 1.0
    outputs: dict[str, dict[str, float]] = {}
    for name, ref, got in zip(names, reference, candidate):
        got = np.asarray(got, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if ref.shape != got.shape:
            raise ParityError(f"output '{name}': shape {got.shape} differs from PyTorch's {ref.shape}")
        diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
        outputs[name] = {"max_abs_diff": diff, "max_abs_ref": float(np.max(np.abs(ref))) if ref.size else 0.0}
        max_abs = max(max_abs, diff)
        r2, g2 = ref.reshape(ref.shape[0], -1), got.reshape(got.shape[0], -1)
        if r2.shape[1] == 1:  # one score per example (regression): compare the column across the batch
            r2, g2 = r2.T, g2.T
        for r, g in zip(r2, g2):
            denom = np.linalg.norm(r) * np.linalg.norm(g)
            cos = 1.0 if denom == 0 and np.allclose(r, g) else float(r @ g / denom) if denom else 0.0
            min_cos = min(min_cos, cos)
    return {"max_abs_diff": max_abs, "min_cosine": min_cos, "outputs": outputs}


def check_parity(label: str, expected: list[list["np.ndarray"]], candidate: Runner, batches: list[Batch],
                 names: list[str], tolerance: Tolerance, enforce: bool = True) -> dict[str, Any]:
    """Compare ``candidate`` with PyTorch's ``expected`` outputs per batch; raise ParityError past ``tolerance``.

    The result holds the worst max |diff|, the worst |diff| relative to its output's largest |value|, the
    minimum cosine, and ``bound_used``: the worst |diff| / allowed |diff| (above 1 fails).
    """
    worst: dict[str, Any] = {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "min_cosine": 1.0, "bound_used": 0.0}
    seq_lens, where = [], None
    for batch, ref in zip(batches, expected):
        got = compare(ref, candidate(batch), names)
        length = int(next(iter(batch.values())).shape[1])
        seq_lens.append(length)
        worst["max_abs_diff"] = max(worst["max_abs_diff"], got["max_abs_diff"])
        worst["min_cosine"] = min(worst["min_cosine"], got["min_cosine"])
        for name, o in got["outputs"].items():
            if o["max_abs_ref"] > 0:
                worst["max_rel_diff"] = max(worst["max_rel_diff"], o["max_abs_diff"] / o["max_abs_ref"])
            allowed = tolerance.allowed(o["max_abs_ref"], length)
            used = o["max_abs_diff"] / allowed
            if where is None or used > worst["bound_used"]:
                worst["bound_used"] = used
                where = (name, length, o["max_abs_diff"], allowed, o["max_abs_ref"])
    worst["cases"] = len(batches)
    worst["sequence_lengths"] = sorted(set(seq_lens))
    worst["enforced"] = enforce
    if enforce and where is not None and (worst["bound_used"] > 1 or worst["min_cosine"] < tolerance.min_cosine):
        name, length, diff, allowed, max_ref = where
        raise ParityError(
            f"{label} disagrees with PyTorch: max |diff| {diff:.3g} on '{name}' at length {length} "
            f"(allowed {allowed:.3g} = atol {tolerance.atol:g} + rtol {tolerance.rtol:g} x {tolerance.depth} layers "
            f"x sqrt({length}) x max|output| {max_ref:.3g}; relative "
            f"{diff / max_ref if max_ref else float('inf'):.3g}), min cosine {worst['min_cosine']:.6f} "
            f"(required {tolerance.min_cosine}) over {len(batches)} batches of lengths "
            f"{worst['sequence_lengths']}. Do not ship this file; raise export.rtol or export.atol only if the "
            "difference is expected (e.g. a quantized model)."
        )
    return worst


# A quantized or fp16 runtime file is not held to fp32 round-off: it must keep the task's fidelity to PyTorch
# (mean cosine of sentence vectors, top-1 agreement of class logits, argmax agreement of token logits) on the
# parity texts at or above this floor (the bar an INT8 / fp16 embedding file must meet against the teacher).
QUANTIZED_FLOOR = 0.98


def task_rows(task: str, outputs: list["np.ndarray"], names: list[str], batch: Batch) -> "np.ndarray | None":
    """What the task's fidelity compares per row for one batch of a file's outputs: sentence vectors (pooled),
    logits rows (sentence heads), the argmax id of every unpadded token (token heads); None for span heads."""
    import numpy as np

    from compress.tasks import task_spec

    kind = task_spec(task).outputs
    if kind == "pooled":
        return np.asarray(outputs[names.index("sentence_embedding")], dtype=np.float32)
    if kind == "logits":
        return np.asarray(outputs[0], dtype=np.float32).reshape(len(outputs[0]), -1)
    if kind in ("words", "tokens"):
        mask = batch["attention_mask"].astype(bool)
        return np.asarray(outputs[0]).argmax(-1)[mask]
    return None


def check_fidelity(label: str, task: str, expected: list[list["np.ndarray"]], candidate: Runner,
                   batches: list[Batch], names: list[str], floor: float = QUANTIZED_FLOOR,
                   enforce: bool = False) -> dict[str, Any]:
    """The task's fidelity of a quantized / fp16 file to PyTorch on ``batches``, and whether it meets ``floor``.

    The result holds ``fidelity`` (its task name and value), ``floor``, ``meets_floor``, the minimum cosine and max
    |diff| of the raw outputs (for the record) and ``enforced`` False, so the fp32 aggregates (max |diff|, bound
    used) are not mixed with a quantized file's drift. The few parity texts cannot judge a quantized file (one
    flipped sentence of 8 is 0.875): the quantize stage scores it on the eval rows and the search on its floor; only
    with ``enforce`` (a file that must reproduce the model, e.g. Core ML's stored weights) is a miss a ParityError.
    """
    import numpy as np

    from compress.tasks import task_spec

    spec = task_spec(task)
    got = [candidate(b) for b in batches]
    raw = [compare(ref, out, names) for ref, out in zip(expected, got)]
    result: dict[str, Any] = {"max_abs_diff": max(r["max_abs_diff"] for r in raw),
                              "min_cosine": min(r["min_cosine"] for r in raw), "cases": len(batches),
                              "floor": floor, "enforced": False}
    rows = [(task_rows(task, o, names, b), task_rows(task, r, names, b)) for o, r, b in zip(got, expected, batches)]
    if any(a is None for a, _ in rows):  # span heads: the raw outputs' cosine is the fidelity
        name, value = "min_cosine", result["min_cosine"]
    else:
        a, ref = {"a": np.concatenate([x for x, _ in rows])}, {"a": np.concatenate([y for _, y in rows])}
        name, value = spec.fidelity, float(spec.agreement(a, ref))
    result["fidelity"] = {"name": name, "value": value}
    result["meets_floor"] = value >= floor
    if enforce and value < floor:
        raise ParityError(f"{label} keeps {name} {value:.4f} to PyTorch on the parity texts, below the floor {floor} "
                          f"(raw outputs: min cosine {result['min_cosine']:.4f}). Do not ship this file; use the "
                          "fp32 file or another precision")
    return result
