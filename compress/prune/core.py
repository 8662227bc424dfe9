"""How to cut: choose indices from scores and a plan, cut them through torch-pruning's dependency graph,
then make the HF modules and config describe the new shapes so ``from_pretrained`` reloads them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compress.core.errors import EdgepressError
from compress.prune import arch
from compress.prune.importance import Scores, attention_group, ffn_group
from compress.prune.plan import Plan, Shapes

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


def example_inputs(model: "PreTrainedModel", seq_len: int = 16) -> dict[str, "torch.Tensor"]:
    """Token ids avoiding special/pad ids (0..4) and an all-ones mask, for tracing and MAC counting."""
    import torch

    vocab = model.config.vocab_size
    ids = (torch.arange(seq_len) * 7919) % max(1, vocab - 10) + 5
    return {"input_ids": ids.unsqueeze(0), "attention_mask": torch.ones(1, seq_len, dtype=torch.long)}


def build_graph(model: "PreTrainedModel") -> Any:
    """torch-pruning's dependency graph of ``model`` (a clear error when tracing fails)."""
    import torch_pruning as tp

    try:
        return tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs(model), verbose=False)
    except Exception as exc:  # tracing failures surface as many exception types
        raise EdgepressError(
            f"torch-pruning could not trace {type(model).__name__} ({type(exc).__name__}: {str(exc)[:200]}); "
            "this architecture cannot be pruned structurally"
        ) from None


def shapes_of(model: "PreTrainedModel") -> Shapes:
    """Current head counts, FFN widths and per-layer param/MAC totals."""
    import torch

    stack = arch.layers(model)
    params = [sum(p.numel() for p in layer.parameters()) for layer in stack]
    macs = [sum(m.in_features * m.out_features for m in layer.modules() if isinstance(m, torch.nn.Linear))
            for layer in stack]
    a = arch.detect(model)
    return Shapes(getattr(model.config, a.hidden_attr), arch.head_size(model), arch.heads_per_layer(model),
                  arch.ffn_per_layer(model), params, macs)


def select(scores: Scores, plan: Plan, min_heads: int) -> tuple[list[list[int]], list[list[int]]]:
    """Indices (current numbering) of heads and FFN neurons to remove in each kept layer."""
    import torch

    heads_rm: list[list[int]] = []
    if plan.global_heads_remove is not None:
        flat = sorted((float(s), li, h) for li, layer in enumerate(scores.heads) for h, s in enumerate(layer))
        left = [len(layer) for layer in scores.heads]
        heads_rm = [[] for _ in scores.heads]
        todo = plan.global_heads_remove
        for _, li, h in flat:
            if todo == 0:
                break
            if left[li] > min_heads:
                heads_rm[li].append(h)
                left[li] -= 1
                todo -= 1
    else:
        for layer, keep in zip(scores.heads, plan.heads_keep):
            n_rm = len(layer) - keep
            heads_rm.append(sorted(torch.argsort(layer)[:n_rm].tolist()) if n_rm > 0 else [])
    ffn_rm = []
    for layer, keep in zip(scores.ffn, plan.ffn_keep):
        n_rm = len(layer) - keep
        ffn_rm.append(sorted(torch.argsort(layer)[:n_rm].tolist()) if n_rm > 0 else [])
    return [sorted(h) for h in heads_rm], ffn_rm


def cut(dg: Any, model: "PreTrainedModel", heads_rm: list[list[int]], ffn_rm: list[list[int]]) -> None:
    """Remove the chosen heads and neurons for real, then fix attention attributes and the config."""
    dh = arch.head_size(model)
    widths = set()
    for i, (hr, fr) in enumerate(zip(heads_rm, ffn_rm)):
        originals = arch.original_head_ids(model, i)
        if hr:
            attention_group(dg, model, i, [h * dh + j for h in hr for j in range(dh)]).prune()
        arch.fix_attention(model, i, [originals[h] for h in hr])
        if fr:
            ffn_group(dg, model, i, fr).prune()
        widths.add(arch.parts(model, i).ffn_in.out_features)
    if len(widths) != 1:
        raise EdgepressError(f"internal: FFN widths differ across layers after cutting ({sorted(widths)})")
    arch.set_ffn_width(model, widths.pop())
    a = arch.detect(model)
    # what the config cannot say directly (heads per layer live in pruned_heads): a readable summary
    model.config.edgepress_pruned = {"heads_per_layer": arch.heads_per_layer(model),
                                     "ffn_per_layer": arch.ffn_per_layer(model),
                                     "config_heads": getattr(model.config, a.heads_attr)}
