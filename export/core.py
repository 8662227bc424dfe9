"""What every exporter shares: the loaded model, its wrapper, tokenizer, parity batches and PyTorch's outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.tasks import TASKS
from export.heads import HeadSpec, get_head, input_names_for, load_for_export, make_wrapper
from export.parity import (DEFAULT_ATOL, DEFAULT_MIN_COSINE, DEFAULT_RTOL, QUANTIZED_FLOOR, Batch, Runner, Tolerance,
                            check_fidelity, check_parity, encode_batch, example_batch, parity_groups, torch_runner)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from compress.model.interface import ModelInterface


@dataclass
class Written:
    """Files written (format -> path), extra files (operator config, optimised ONNX), each runtime format's
    quantized / fp16 files (format -> precision -> path; recorded in metrics as ``quantized_<format>_<precision>``)
    and metrics."""

    files: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    precisions: dict[str, dict[str, Path]] = field(default_factory=dict)


@dataclass
class Prepared:
    """A model ready to export: wrapper module, input names, real-text batches and PyTorch's outputs on them."""

    model_dir: Path
    head: HeadSpec
    model: Any
    wrapper: "torch.nn.Module"
    input_names: list[str]
    tokenizer: Any
    max_length: int
    batches: list[Batch]
    expected: list[list["np.ndarray"]]
    example: Batch
    tolerance: Tolerance = field(default_factory=Tolerance)
    interface: "ModelInterface | None" = None
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration_texts: list[str] | None = None  # the run's training texts, when the export stage has them

    def calibration_source(self) -> str:
        """What ``calibration_batches`` calibrates on, for the record."""
        if self.calibration_texts:
            return f"the run's training texts (first {min(len(self.calibration_texts), 64)})"
        return "sentences from the Python docs bundled with CPython (no training texts given)"

    def calibration_batches(self, rows: int = 64, batch_size: int = 8) -> list[Batch]:
        """Real-text batches (padded to their longest row) to calibrate a runtime's INT8 file: the run's training
        texts when set, else sentences from the Python docs bundled with CPython."""
        from compress.data.rows import builtin_pydoc_sentences

        texts = (self.calibration_texts or builtin_pydoc_sentences(min_words=5, max_words=60))[:rows]
        return [encode_batch(self.tokenizer, texts[i:i + batch_size], self.input_names, self.max_length)
                for i in range(0, len(texts), batch_size)]

    @property
    def output_names(self) -> list[str]:
        return self.head.output_names

    def example_tensors(self) -> tuple["torch.Tensor", ...]:
        import torch

        return tuple(torch.from_numpy(self.example[n]) for n in self.input_names)

    def check(self, label: str, runner: Runner, enforce: bool = True) -> dict[str, Any]:
        """Parity of ``runner`` against PyTorch on every batch; stored under ``label`` and returned."""
        result = check_parity(label, self.expected, runner, self.batches, self.output_names, self.tolerance,
                              enforce=enforce)
        self.parity[label] = result
        return result

    def check_quantized(self, label: str, runner: Runner, floor: float = QUANTIZED_FLOOR,
                        enforce: bool = False) -> dict[str, Any]:
        """The task's fidelity of a quantized / fp16 file (``runner``) to PyTorch on every batch and whether it meets
        ``floor`` (a ParityError below it only with ``enforce``)."""
        result = check_fidelity(label, self.head.task, self.expected, runner, self.batches, self.output_names, floor,
                                enforce)
        self.parity[label] = result
        return result


def prepare(model_dir: Path, task: str, max_length: int | None = None, atol: float = DEFAULT_ATOL,
            min_cosine: float = DEFAULT_MIN_COSINE, interface: "ModelInterface | None" = None,
            rtol: float = DEFAULT_RTOL) -> Prepared:
    """Load ``model_dir`` with the ``task`` head and compute the reference outputs once.

    The reference is the library that defines the model's behaviour: the transformers model for its
    outputs, and ``SentenceTransformer.encode`` for a sentence-transformers folder's ``sentence_embedding``.
    ``max_length`` None: the model interface's maximum sequence length. ``rtol``/``atol``/``min_cosine``
    make the parity ``Tolerance`` (its depth is the model's number of layers).
    """
    from transformers import AutoTokenizer

    from compress.core.errors import ModelLoadError
    from compress.model.checks import position_limit
    from compress.model.interface import interface_of, is_sentence_transformers_folder

    head = get_head(task)
    iface = interface or interface_of(model_dir, head.task)
    model = load_for_export(Path(model_dir), head.task)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model folder '{model_dir}' has no loadable tokenizer ({exc}); save the tokenizer "
                             "next to the model (tokenizer.save_pretrained(folder))") from None
    limit = position_limit(model.config) or 512
    max_length = min(max_length or iface.max_seq_length, limit)
    names = input_names_for(model)
    wrapper = make_wrapper(model, head.task, names, iface)
    groups = parity_groups()
    batches = [encode_batch(tokenizer, g, names, max_length) for g in groups]
    reference = torch_runner(wrapper, names)
    expected = [reference(b) for b in batches]
    if TASKS[head.task].pooled and is_sentence_transformers_folder(model_dir):
        expected = _sentence_transformers_reference(Path(model_dir), groups, max_length, expected, head.output_names)
    depth = next((getattr(model.config, k) for k in ("num_hidden_layers", "n_layers", "num_layers")
                  if isinstance(getattr(model.config, k, None), int)), 1)
    return Prepared(Path(model_dir), head, model, wrapper, names, tokenizer, max_length, batches, expected,
                    example_batch(tokenizer, names, max_length), Tolerance(rtol, atol, min_cosine, depth),
                    interface=iface)


def _sentence_transformers_reference(model_dir: Path, groups: list[list[str]], max_length: int,
                                     expected: list[list["np.ndarray"]], names: list[str]) -> list[list["np.ndarray"]]:
    """``sentence_embedding`` taken from ``SentenceTransformer(model_dir).encode`` (same truncation)."""
    from compress.model.interface import load_sentence_transformer

    st = load_sentence_transformer(model_dir)
    st.max_seq_length = max_length
    k = names.index("sentence_embedding")
    out = []
    for group, outs in zip(groups, expected):
        emb = st.encode(group, batch_size=len(group), convert_to_numpy=True, show_progress_bar=False)
        out.append([emb if i == k else o for i, o in enumerate(outs)])
    return out
