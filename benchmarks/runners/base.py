"""The runner contract: load a model file, feed tokenizer outputs by name, time it, return task outputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

STANDARD_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Threads:
    """Thread counts set explicitly on the runtime; None = the runtime's default."""

    intra_op: int | None = None
    inter_op: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return {"intra_op": self.intra_op, "inter_op": self.inter_op}


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask), the default intra-op thread count."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


class Runner(ABC):
    """One backend (format × device). ``prepare`` moves numpy feeds to the runtime outside the timed loop."""

    backend: ClassVar[str] = ""
    formats: ClassVar[tuple[str, ...]] = ()
    device: ClassVar[str] = "cpu"

    def __init__(self, path: Path, task: str, threads: Threads | None = None) -> None:
        self.path = Path(path)
        self.task = task
        self.threads = threads or Threads()
        self.input_names: list[str] = list(STANDARD_INPUTS[:2])
        self.vocab_size: int | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run here (missing provider, no CUDA), or None when it can."""
        return None

    @abstractmethod
    def load(self) -> None:
        """Load the model; afterwards ``input_names`` lists the inputs the model declares."""

    def prepare(self, feeds: dict[str, "np.ndarray"]) -> Any:
        """Convert numpy feeds (only the declared names) into what ``run`` takes."""
        return {k: v for k, v in feeds.items() if k in self.input_names}

    @abstractmethod
    def run(self, prepared: Any) -> Any:
        """One forward pass (blocking until the result is ready: GPU runners synchronise)."""

    @abstractmethod
    def outputs(self, prepared: Any) -> dict[str, "np.ndarray"]:
        """Named numpy outputs of one forward pass (``last_hidden_state``, ``sentence_embedding``, ``logits``)."""

    def predict(self, feeds: dict[str, "np.ndarray"]) -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
        """Task output: sentence embeddings [B, H] (embedding), logits [B, C] (classification), scores [B] (regression),
        token logits [B, S, C] (token-classification), (start, end) logits [B, S] (question-answering)."""
        return task_output(self.task, self.outputs(self.prepare(feeds)), feeds["attention_mask"],
                           getattr(self, "pooling", None))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "threads": self.threads.to_dict()}


def pool_tokens(hidden: "np.ndarray", mask: "np.ndarray", interface: Any = None) -> "np.ndarray":
    """Sentence vectors from token vectors, with sentence-transformers' Pooling (+ Normalize) as ``interface``
    says (mean when None): for files that only output ``last_hidden_state`` (an optimum export of the teacher)."""
    import torch

    from compress.model.interface import ModelInterface, SentencePooler

    pooler = SentencePooler(interface or ModelInterface("embedding"), int(hidden.shape[-1]))
    with torch.inference_mode():
        return pooler(torch.from_numpy(hidden), torch.from_numpy(mask.astype("int64"))).numpy()


def task_output(task: str, outputs: dict[str, "np.ndarray"], attention_mask: "np.ndarray",
                pooling: Any = None) -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
    """Pick and post-process the output the task's metric needs (``pooling``: the interface for token outputs)."""
    import numpy as np

    from compress.tasks import TASKS

    spec = TASKS.get(task)
    kind = spec.outputs if spec is not None else None
    outs = {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}
    if kind == "pooled":
        if "sentence_embedding" in outs:
            return outs["sentence_embedding"]
        hidden = outs.get("last_hidden_state")
        if hidden is None:
            hidden = next((v for v in outs.values() if v.ndim == 3), None)
        if hidden is not None:
            return pool_tokens(hidden, attention_mask, pooling)
        two_d = next((v for v in outs.values() if v.ndim == 2), None)
        if two_d is not None:
            return two_d
        raise ValueError(f"no embedding output among {sorted(outs)} (expected sentence_embedding or last_hidden_state)")
    if kind == "logits":
        logits = outs.get("logits")
        if logits is None:
            logits = next((v for v in outs.values() if v.ndim == 2), None)
        if logits is None:
            raise ValueError(f"no logits output among {sorted(outs)}")
        return logits[:, 0] if spec.scores else logits
    if kind == "words":
        logits = outs.get("logits")
        if logits is None:
            logits = next((v for v in outs.values() if v.ndim == 3), None)
        if logits is None or logits.ndim != 3:
            raise ValueError(f"no token logits [batch, sequence, classes] among {sorted(outs)}")
        return logits
    if kind == "answers":
        from benchmarks.spans import span_logits

        return span_logits(outs)
    raise ValueError(f"task '{task}' has no quality output in the benchmark (latency only)")
