"""Student construction: the teacher's embeddings plus a subset of its layers (DistilBERT's init)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from compress.core.errors import ModelLoadError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def layer_stack(model: "PreTrainedModel") -> tuple["torch.nn.ModuleList", str]:
    """The encoder's ModuleList of layers and the config attribute holding its length."""
    from compress.model.loading import base_model

    base = base_model(model)
    encoder = getattr(base, "encoder", None)
    if encoder is not None and hasattr(encoder, "layer") and not hasattr(encoder, "albert_layer_groups"):
        return encoder.layer, "num_hidden_layers"  # BERT, RoBERTa, XLM-R, ELECTRA, MiniLM
    transformer = getattr(base, "transformer", None)
    if transformer is not None and hasattr(transformer, "layer"):
        return transformer.layer, "n_layers"  # DistilBERT
    raise ModelLoadError(
        f"cannot pick layers from a {type(model).__name__} ({model.config.model_type}): supported are BERT, "
        "DistilBERT, RoBERTa, XLM-R, ELECTRA-style encoders (ALBERT shares weights across layers: give student.model)"
    )


def spread_layers(num_teacher_layers: int, num_student_layers: int) -> list[int]:
    """Evenly spread indices keeping first and last (12 -> 6 gives DistilBERT-like [0, 2, 4, 7, 9, 11])."""
    if num_student_layers > num_teacher_layers:
        raise ModelLoadError(
            f"student.num_layers={num_student_layers} exceeds the teacher's {num_teacher_layers} layers"
        )
    if num_student_layers == 1:
        return [num_teacher_layers - 1]
    step = (num_teacher_layers - 1) / (num_student_layers - 1)
    return [int(i * step + 0.5) for i in range(num_student_layers)]


def student_from_teacher(teacher: "PreTrainedModel", layers: list[int] | None = None,
                         num_layers: int | None = None) -> tuple["PreTrainedModel", list[int]]:
    """A deep copy of the teacher keeping only ``layers`` (or ``num_layers`` spread evenly)."""
    import torch

    stack, attr = layer_stack(teacher)
    n = len(stack)
    if layers is None:
        layers = spread_layers(n, num_layers or max(1, n // 2))
    bad = [i for i in layers if not 0 <= i < n]
    if bad:
        raise ModelLoadError(f"student.layers {bad} out of range: the teacher has layers 0..{n - 1}")
    student = copy.deepcopy(teacher)
    s_stack, _ = layer_stack(student)
    kept = torch.nn.ModuleList([s_stack[i] for i in layers])
    parent = _parent_of(student, s_stack)
    parent.layer = kept
    setattr(student.config, attr, len(layers))
    for idx, layer in enumerate(kept):  # attention modules that carry a layer index (caches) must stay consistent
        for mod in layer.modules():
            if hasattr(mod, "layer_idx"):
                mod.layer_idx = idx
    return student, list(layers)


def _parent_of(model: "torch.nn.Module", stack: "torch.nn.ModuleList") -> "torch.nn.Module":
    for mod in model.modules():
        if getattr(mod, "layer", None) is stack:
            return mod
    raise ModelLoadError("internal: could not find the module holding the encoder layers")


def check_same_vocab(teacher_tok: "PreTrainedTokenizerBase", student_tok: "PreTrainedTokenizerBase",
                     student_name: str) -> None:
    """Refuse a student whose tokenizer would map text to different ids than the teacher's."""
    tv, sv = teacher_tok.get_vocab(), student_tok.get_vocab()
    if tv != sv:
        only_t = len(set(tv) - set(sv))
        only_s = len(set(sv) - set(tv))
        raise ModelLoadError(
            f"student '{student_name}' has a different vocabulary than the teacher ({len(sv)} vs {len(tv)} tokens; "
            f"{only_t} only in teacher, {only_s} only in student). Distillation needs the same tokenizer: "
            "pick a student from the same family or build it from teacher layers (student.num_layers)."
        )
