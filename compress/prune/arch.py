"""Where heads and FFN neurons live in each supported encoder, and how its config records them.

One small adapter per module layout: BERT-style (BERT, MiniLM, RoBERTa, XLM-R, ELECTRA, CamemBERT)
and DistilBERT. The adapter names the Linear layers torch-pruning cuts and fixes the attributes
HF attention modules and configs keep about their own shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from compress.core.errors import EdgepressError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

BERT_STYLE = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
DISTILBERT_STYLE = ("distilbert",)
SUPPORTED = BERT_STYLE + DISTILBERT_STYLE


@dataclass
class LayerParts:
    """The modules of one encoder layer that structural pruning touches."""

    query: "torch.nn.Linear"
    key: "torch.nn.Linear"
    value: "torch.nn.Linear"
    attn_out: "torch.nn.Linear"
    ffn_in: "torch.nn.Linear"
    ffn_out: "torch.nn.Linear"
    attention: "torch.nn.Module"  # holds ``pruned_heads`` (BertAttention / MultiHeadSelfAttention)
    self_attn: "torch.nn.Module"  # holds the head count attributes


@dataclass(frozen=True)
class Arch:
    """Config attribute names of one module layout."""

    style: str  # "bert" | "distilbert"
    heads_attr: str
    ffn_attr: str
    layers_attr: str
    hidden_attr: str


ARCHS = {
    "bert": Arch("bert", "num_attention_heads", "intermediate_size", "num_hidden_layers", "hidden_size"),
    "distilbert": Arch("distilbert", "n_heads", "hidden_dim", "n_layers", "dim"),
}


def detect(model: "PreTrainedModel") -> Arch:
    """The adapter for ``model``, or a clear error naming what is supported."""
    mt = getattr(model.config, "model_type", type(model).__name__)
    if mt in BERT_STYLE:
        arch = ARCHS["bert"]
    elif mt in DISTILBERT_STYLE:
        arch = ARCHS["distilbert"]
    else:
        raise EdgepressError(
            f"structural pruning does not support model type '{mt}' ({type(model).__name__}); supported: "
            f"{', '.join(SUPPORTED)} (ALBERT shares weights across layers, so heads cannot be cut per layer)"
        )
    try:
        layers(model)
        parts(model, 0)
    except (AttributeError, IndexError) as exc:
        raise EdgepressError(
            f"model type '{mt}' ({type(model).__name__}) does not have the expected {arch.style}-style encoder "
            f"modules ({exc}); it cannot be pruned structurally"
        ) from None
    return arch


def layers(model: "PreTrainedModel") -> "torch.nn.ModuleList":
    """The encoder's ModuleList of layers."""
    from compress.distill.student import layer_stack

    return layer_stack(model)[0]


def parts(model: "PreTrainedModel", i: int) -> LayerParts:
    """The prunable modules of layer ``i``."""
    layer = layers(model)[i]
    if hasattr(layer, "ffn"):  # DistilBERT
        att = layer.attention
        return LayerParts(att.q_lin, att.k_lin, att.v_lin, att.out_lin, layer.ffn.lin1, layer.ffn.lin2, att, att)
    att = layer.attention
    return LayerParts(att.self.query, att.self.key, att.self.value, att.output.dense, layer.intermediate.dense,
                      layer.output.dense, att, att.self)


def head_size(model: "PreTrainedModel") -> int:
    """Width of one attention head (unchanged by pruning: whole heads are removed)."""
    cfg = model.config
    arch = detect(model)
    hidden, heads = getattr(cfg, arch.hidden_attr), getattr(cfg, arch.heads_attr)
    if hidden % heads:
        raise EdgepressError(f"{arch.heads_attr}={heads} does not divide {arch.hidden_attr}={hidden}: "
                             "head size is undefined, so heads cannot be pruned")
    return hidden // heads


def heads_per_layer(model: "PreTrainedModel") -> list[int]:
    """Current attention heads in each layer (differs from the config after head pruning)."""
    dh = head_size(model)
    return [parts(model, i).query.out_features // dh for i in range(len(layers(model)))]


def ffn_per_layer(model: "PreTrainedModel") -> list[int]:
    """Current FFN intermediate width in each layer."""
    return [parts(model, i).ffn_in.out_features for i in range(len(layers(model)))]


def original_head_ids(model: "PreTrainedModel", i: int) -> list[int]:
    """Original (config) indices of the heads layer ``i`` still has, in their current order."""
    arch = detect(model)
    total = getattr(model.config, arch.heads_attr)
    gone = set(parts(model, i).attention.pruned_heads)
    return [h for h in range(total) if h not in gone]


def fix_attention(model: "PreTrainedModel", i: int, removed_original: list[int]) -> None:
    """Make layer ``i``'s attention attributes and ``config.pruned_heads`` match its cut Linear layers."""
    arch = detect(model)
    p = parts(model, i)
    dh = head_size(model)
    n = p.query.out_features // dh
    if arch.style == "distilbert":
        p.self_attn.n_heads = n
        p.self_attn.dim = n * dh
        p.self_attn.attention_head_size = dh
    else:
        p.self_attn.num_attention_heads = n
        p.self_attn.attention_head_size = dh
        p.self_attn.all_head_size = n * dh
    if hasattr(p.self_attn, "scaling"):  # newer attention modules cache 1/sqrt(head size) at init
        p.self_attn.scaling = dh**-0.5
    p.attention.pruned_heads = set(p.attention.pruned_heads) | set(removed_original)
    if removed_original:
        ph = {int(k): list(v) for k, v in (model.config.pruned_heads or {}).items()}
        ph[i] = sorted(set(ph.get(i, [])) | set(removed_original))
        model.config.pruned_heads = ph


def set_ffn_width(model: "PreTrainedModel", width: int) -> None:
    """Record the (uniform) FFN width in the config."""
    setattr(model.config, detect(model).ffn_attr, width)


def drop_layers(model: "PreTrainedModel", drop: list[int]) -> list[int]:
    """Remove encoder layers ``drop`` in place; fix the layer count and ``pruned_heads``; return kept ids."""
    import torch

    from compress.distill.student import _parent_of

    arch = detect(model)
    stack = layers(model)
    keep = [i for i in range(len(stack)) if i not in set(drop)]
    parent = _parent_of(model, stack)
    parent.layer = torch.nn.ModuleList([stack[i] for i in keep])
    setattr(model.config, arch.layers_attr, len(keep))
    old = {int(k): list(v) for k, v in (model.config.pruned_heads or {}).items()}
    model.config.pruned_heads = {new: old[orig] for new, orig in enumerate(keep) if old.get(orig)}
    for new, layer in enumerate(parent.layer):
        for mod in layer.modules():
            if hasattr(mod, "layer_idx"):
                mod.layer_idx = new
    return keep
