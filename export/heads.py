"""Each exportable head (model class, outputs and their meaning), read from the task registry.

One table (like Optimum's OnnxConfig per task; each ``compress/tasks/`` file owns its ``HeadSpec``) drives every
exporter, the parity check and the bundle manifest, so names cannot drift between formats.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from compress.tasks import TASKS, TaskTable
from compress.model.formats import FORMATS, FormatTable
from compress.tasks.spec import HeadSpec, OutputSpec  # noqa: F401  (re-exported for importers)
from export.errors import UnsupportedHeadError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from compress.model.interface import ModelInterface

FILE_NAMES: Mapping[str, str] = FormatTable("file")  # each format's file in an export folder (the registry's)
FILE_PRECISION: Mapping[str, str] = FormatTable("precision")  # what each format's main file computes in
FORMAT_ALIASES = {"pte": "executorch"}  # former names, still read
INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")


HEADS: Mapping[str, HeadSpec] = TaskTable("head")  # each task file owns its head; read live
# Aliases used by transformers / optimum task names.
ALIASES = {"feature-extraction": "embedding", "sentence-embedding": "embedding", "fill-mask": "mlm",
           "text-classification": "classification", "sequence-classification": "classification"}


def canonical_format(fmt: str) -> str:
    """A format's current name (``pte`` reads as ``executorch``)."""
    return FORMAT_ALIASES.get(fmt, fmt)


def get_head(task: str, fmt: str | None = None) -> HeadSpec:
    """The head spec for ``task`` (refusing unknown tasks and formats that cannot carry it)."""
    name = ALIASES.get(task, task)
    if name not in HEADS:
        raise UnsupportedHeadError(
            f"head '{task}' cannot be exported; supported heads: {', '.join(HEADS)} "
            f"(aliases: {', '.join(ALIASES)}). Encoder-decoder and generative heads are out of scope."
        )
    head = HEADS[name]
    if fmt is not None:
        if fmt not in FORMATS:
            raise UnsupportedHeadError(f"unknown export format '{fmt}'; choose from {', '.join(FORMATS)}")
        if not head.carries(fmt):
            raise UnsupportedHeadError(f"format '{fmt}' cannot carry the '{name}' head; it supports: "
                                       f"{', '.join(h for h, s in HEADS.items() if s.carries(fmt))}")
    return head


def load_for_export(model_dir: Path, task: str) -> "PreTrainedModel":
    """Load a save_pretrained folder with the head ``task`` needs, in eval mode, refusing missing heads."""
    import transformers

    from compress.model.loading import load_model

    head = get_head(task)
    pooled = TASKS[head.task].outputs == "pooled"
    if not TASKS[head.task].token_level:
        model = load_model(str(model_dir), head.task)
    else:
        cls = getattr(transformers, head.auto_class)
        model, info = cls.from_pretrained(str(model_dir), output_loading_info=True)
        missing = [k for k in info.get("missing_keys", []) if "classifier" in k or "qa_outputs" in k]
        if missing:
            from compress.core.errors import ModelLoadError

            raise ModelLoadError(f"model '{model_dir}' has no trained {head.task} head (missing: {', '.join(missing[:4])})")
    model.eval()
    if pooled and getattr(model, "base_model_prefix", "") and hasattr(model, model.base_model_prefix):
        model = getattr(model, model.base_model_prefix)
    return model


def input_names_for(model: "torch.nn.Module") -> list[str]:
    """``input_ids``, ``attention_mask`` and ``token_type_ids`` when the model's forward takes them."""
    params = inspect.signature(model.forward).parameters
    names = [n for n in INPUT_ORDER if n in params]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise UnsupportedHeadError(f"{type(model).__name__}.forward takes {list(params)[:6]}; export needs "
                                   "input_ids and attention_mask (a BERT-family encoder)")
    return names


def make_wrapper(model: "torch.nn.Module", task: str, input_names: list[str],
                 interface: "ModelInterface | None" = None) -> "torch.nn.Module":
    """A module taking positional int64 tensors in ``input_names`` order and returning the head's outputs as a tuple.

    Embedding heads pool (and normalise) with sentence-transformers' own modules, as ``interface`` says, so
    ``sentence_embedding`` is what ``SentenceTransformer.encode`` returns for the same model.
    """
    import torch

    from compress.model.interface import ModelInterface, SentencePooler, hidden_size

    head = get_head(task)
    pooler = None
    if TASKS[head.task].outputs == "pooled":
        pooler = SentencePooler(interface or ModelInterface("embedding"), hidden_size(model.config))

    class _Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            if pooler is not None:
                self.pool = pooler.pool
                self.norm = pooler.normalize

        def _outputs(self, kwargs: dict) -> tuple:
            out = self.model(**kwargs, return_dict=True)
            if pooler is not None:
                hidden = out.last_hidden_state
                return hidden, pooler(hidden, kwargs["attention_mask"])
            return tuple(getattr(out, name) for name in head.output_names)  # the head's outputs, named as exported

    if len(input_names) == 3:
        class Wrapper(_Head):
            def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: D401 - traced signature
                return self._outputs({"input_ids": input_ids, "attention_mask": attention_mask,
                                      "token_type_ids": token_type_ids})
    else:
        class Wrapper(_Head):
            def forward(self, input_ids, attention_mask):
                return self._outputs({"input_ids": input_ids, "attention_mask": attention_mask})

    return Wrapper().eval()
