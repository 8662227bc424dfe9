"""The accuracy guard: quantize, score against fp32, and walk the fallbacks until retention reaches the floor.

Fallbacks, cumulative and in order, stopping at the first attempt that passes. The ones that keep the file
as small as the base come first; keeping blocks in float (which can double an INT8 file: the embeddings
are most of a small encoder) comes last:
1. the method's base settings;
2. per-channel weights (dynamic, static);
3. attention's activation x activation MatMuls kept in float (static: weight MatMuls only);
4. the method's last knob: other calibration methods (static), SmoothQuant toggled (nncf),
   reduce_range toggled (dynamic);
5. a 4-bit word-embedding table (``quantize.embedding.bits: 4``) back to the method's 8 bits;
6. embeddings and task head (pooler/classifier/MLM head) kept in float;
7. also the most sensitive encoder layer(s) kept in float (sensitivity measured: each layer kept in
   float on its own, the layers whose float copy recovers most retention first).
QAT (itself PTQ's fallback) has no further fallbacks. When none passes, the best attempt is kept
and the method is marked ``meets_floor: false``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.evalset import EvalBatches
from compress.quantize.config import GuardOptions
from compress.quantize.evaluate import score
from compress.quantize.methods import Settings, method_spec

QuantizeFn = Callable[[Settings, Path, list[str]], "dict[str, Any] | None"]
CALIBRATIONS = ("minmax", "entropy", "percentile")


def excluded_nodes(blocks: dict[str, list[str]], float_blocks: list[str]) -> list[str]:
    """Node names of the blocks kept in float."""
    return [n for b in float_blocks for n in blocks.get(b, [])]


class Guard:
    """Runs and records the attempts of one method."""

    def __init__(self, method: str, quantize: QuantizeFn, ev: EvalBatches, blocks: dict[str, list[str]],
                 opts: GuardOptions, work_dir: Path) -> None:
        self.method, self.quantize, self.ev, self.blocks, self.opts = method, quantize, ev, blocks, opts
        self.work_dir = work_dir
        self.attempts: list[dict[str, Any]] = []
        self.files: list[Path] = []
        self.sensitivity: dict[str, float] = {}

    def _build(self, s: Settings, tag: str) -> tuple[Path, dict[str, Any]]:
        dst = self.work_dir / f"{self.method}-{tag}.onnx"
        details = self.quantize(s, dst, excluded_nodes(self.blocks, s.float_blocks))
        return dst, details or {}

    def attempt(self, label: str, s: Settings) -> dict[str, Any]:
        """Quantize with ``s``, score on the eval rows, record the attempt."""
        start = time.perf_counter()
        dst, details = self._build(s, str(len(self.attempts)))
        result = score(dst, self.ev)
        rec = {"label": label, "settings": s.describe(), **details, **result,
               "passed": bool(result["retention"] >= self.opts.retention_floor),
               "seconds": round(time.perf_counter() - start, 2)}
        self.attempts.append(rec)
        self.files.append(dst)
        return rec

    def rank_layers(self, s: Settings) -> list[str]:
        """Encoder layers, most sensitive first: retention with only that layer kept in float."""
        from compress.quantize.evaluate import set_reference

        small = self.ev.head(self.opts.sensitivity_samples)
        set_reference(small, self._reference_path)
        layers = sorted((b for b in self.blocks if b.startswith("layer.")), key=lambda b: int(b.split(".")[1]))
        for layer in layers:
            trial = dataclasses.replace(s, float_blocks=sorted(set(s.float_blocks) | {layer}))
            dst, _ = self._build(trial, f"sens-{layer}")
            self.sensitivity[layer] = score(dst, small)["retention"]
            dst.unlink(missing_ok=True)
        return sorted(layers, key=lambda b: -self.sensitivity[b])

    def run(self, base: Settings, reference_path: Path) -> dict[str, Any]:
        """All attempts up to the first that passes; returns the record with the chosen file."""
        self._reference_path = reference_path
        rec = self.attempt("base", base)
        s = base
        if not rec["passed"] and self.opts.fallbacks:
            for label, nxt in self._fallbacks(base):
                s = nxt(s)
                if self.attempt(label, s)["passed"]:
                    break
        passing = [i for i, a in enumerate(self.attempts) if a["passed"]]
        chosen = passing[0] if passing else max(range(len(self.attempts)), key=lambda i: self.attempts[i]["retention"])
        for i, f in enumerate(self.files):
            if i != chosen:
                f.unlink(missing_ok=True)
        out = {"attempts": self.attempts, "chosen": chosen, "meets_floor": bool(passing),
               "retention": self.attempts[chosen]["retention"], "retention_floor": self.opts.retention_floor,
               "file": self.files[chosen]}
        if self.sensitivity:
            out["layer_sensitivity"] = self.sensitivity
        return out

    def _fallbacks(self, base: Settings) -> list[tuple[str, Callable[[Settings], Settings]]]:
        steps: list[tuple[str, Callable[[Settings], Settings]]] = []
        if self.method == "qat":  # QAT is itself the fallback for PTQ; its node names are not the ONNX graph's
            return steps
        if self.method in ("dynamic", "static") and not base.per_channel:
            steps.append(("per-channel weights", lambda s: dataclasses.replace(s, per_channel=True)))
        if self.method == "static" and not base.weight_matmuls_only:
            steps.append(("attention MatMuls in float", lambda s: dataclasses.replace(s, weight_matmuls_only=True)))
        if self.method == "static":
            for cal in (c for c in CALIBRATIONS if c != base.calibration):
                steps.append((f"calibration {cal}", lambda s, cal=cal: dataclasses.replace(s, calibration=cal)))
        if self.method == "dynamic":
            steps.append(("reduce_range toggled", lambda s: dataclasses.replace(s, reduce_range=not s.reduce_range)))
        if self.method == "nncf":
            steps.append(("SmoothQuant toggled", lambda s: dataclasses.replace(
                s, smooth_quant_alpha=None if s.smooth_quant_alpha is not None else 0.95)))
        if base.embedding_bits == 4 and "embedding_bits" not in method_spec(self.method).unused:
            steps.append(("8-bit embedding table", lambda s: dataclasses.replace(s, embedding_bits=8)))
        edge = [b for b in ("embeddings", "head") if b in self.blocks]
        if edge:
            steps.append(("float " + "+".join(edge),
                          lambda s: dataclasses.replace(s, float_blocks=sorted(set(s.float_blocks) | set(edge)))))
        if sum(b.startswith("layer.") for b in self.blocks) > self.opts.sensitive_layers:  # some layer stays INT8
            def keep_sensitive(s: Settings) -> Settings:
                top = self.rank_layers(s)[: self.opts.sensitive_layers]
                return dataclasses.replace(s, float_blocks=sorted(set(s.float_blocks) | set(top)))
            steps.append((f"float {self.opts.sensitive_layers} most sensitive layer(s)", keep_sensitive))
        return steps
