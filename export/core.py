"""What every exporter shares: the loaded model, its wrapper, tokenizer, parity batches and PyTorch's outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from export.heads import HeadSpec, get_head, input_names_for, load_for_export, make_wrapper
from export.parity import Batch, Runner, check_parity, example_batch, parity_batches, torch_runner

if TYPE_CHECKING:
    import numpy as np
    import torch


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
    atol: float = 1e-4
    min_cosine: float = 0.9999
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def output_names(self) -> list[str]:
        return self.head.output_names

    def example_tensors(self) -> tuple["torch.Tensor", ...]:
        import torch

        return tuple(torch.from_numpy(self.example[n]) for n in self.input_names)

    def check(self, label: str, runner: Runner, enforce: bool = True) -> dict[str, Any]:
        """Parity of ``runner`` against PyTorch on every batch; stored under ``label`` and returned."""
        result = check_parity(label, self.expected, runner, self.batches, self.output_names, self.atol,
                              self.min_cosine, enforce=enforce)
        self.parity[label] = result
        return result


def prepare(model_dir: Path, task: str, max_length: int = 128, atol: float = 1e-4,
            min_cosine: float = 0.9999) -> Prepared:
    """Load ``model_dir`` with the ``task`` head and compute PyTorch's reference outputs once."""
    from transformers import AutoTokenizer

    from compress.errors import ModelLoadError

    head = get_head(task)
    model = load_for_export(Path(model_dir), head.task)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model folder '{model_dir}' has no loadable tokenizer ({exc}); save the tokenizer "
                             "next to the model (tokenizer.save_pretrained(folder))") from None
    limit = getattr(model.config, "max_position_embeddings", max_length)
    if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= (model.config.pad_token_id or 0) + 1  # positions start after the padding index
    max_length = min(max_length, limit)
    names = input_names_for(model)
    wrapper = make_wrapper(model, head.task, names)
    batches = parity_batches(tokenizer, names, max_length)
    reference = torch_runner(wrapper, names)
    expected = [reference(b) for b in batches]
    return Prepared(Path(model_dir), head, model, wrapper, names, tokenizer, max_length, batches, expected,
                    example_batch(tokenizer, names, max_length), atol, min_cosine)
