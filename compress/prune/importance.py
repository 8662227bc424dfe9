"""What to remove: importance scores per attention head and per FFN neuron (and per layer).

* ``l1`` / ``l2`` — torch-pruning's ``GroupMagnitudeImportance`` over each dependency group
  (q, k, v rows + attention-output columns; FFN-in rows + FFN-out columns).
* ``taylor`` — torch-pruning's ``GroupTaylorImportance`` (|w * dL/dw|) after accumulating
  gradients of the task loss over calibration batches.
* ``gradient`` — heads: |dL/d gate| of a per-head gate on the attention output (the head mask of
  Michel et al., 2019), summed over batches and L2-normalised per layer; FFN neurons: Taylor.

Head scores from channel scores are the mean over the head's channels (as torch-pruning does).
Each choice is an entry of :data:`IMPORTANCE`, keyed by ``prune.importance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from compress.core.errors import EdgepressError
from compress.prune import arch

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class Scores:
    """Importance per head and per FFN neuron of every layer (higher = keep)."""

    heads: list["torch.Tensor"]
    ffn: list["torch.Tensor"]


def attention_group(dg: Any, model: "PreTrainedModel", i: int, idxs: list[int]):
    """torch-pruning group cutting output channels ``idxs`` of layer ``i``'s query (and its coupled layers)."""
    import torch_pruning as tp

    return dg.get_pruning_group(arch.parts(model, i).query, tp.prune_linear_out_channels, idxs)


def ffn_group(dg: Any, model: "PreTrainedModel", i: int, idxs: list[int]):
    """torch-pruning group cutting FFN neurons ``idxs`` of layer ``i``."""
    import torch_pruning as tp

    return dg.get_pruning_group(arch.parts(model, i).ffn_in, tp.prune_linear_out_channels, idxs)


def _group_modules(group) -> set:
    import torch

    return {dep.target.module for dep, _ in group
            if isinstance(dep.target.module, torch.nn.Module) and any(True for _ in dep.target.module.parameters(recurse=False))}


def check_groups(dg: Any, model: "PreTrainedModel") -> None:
    """Refuse to cut when the traced graph couples heads/FFN with anything but their own Linear layers."""
    for i in range(len(arch.layers(model))):
        p = arch.parts(model, i)
        for name, group, want in (
            ("attention", attention_group(dg, model, i, [0]), {p.query, p.key, p.value, p.attn_out}),
            ("FFN", ffn_group(dg, model, i, [0]), {p.ffn_in, p.ffn_out}),
        ):
            got = _group_modules(group)
            if got != want:
                names = sorted(dg._module2name.get(m, type(m).__name__) for m in got ^ want)
                raise EdgepressError(
                    f"torch-pruning's dependency graph of {type(model).__name__} couples layer {i}'s {name} channels "
                    f"differently than expected (unexpected or missing: {', '.join(names)}); this architecture "
                    "cannot be pruned structurally here"
                )


def magnitude_scores(dg: Any, model: "PreTrainedModel", p: int) -> Scores:
    """Group L``p`` magnitude of every head and FFN neuron."""
    import torch_pruning as tp

    return _group_scores(dg, model, tp.importance.GroupMagnitudeImportance(p=p, normalizer=None))


def _group_scores(dg: Any, model: "PreTrainedModel", imp, heads: bool = True) -> Scores:
    dh = arch.head_size(model)
    h_scores, f_scores = [], []
    for i in range(len(arch.layers(model))):
        p = arch.parts(model, i)
        if heads:
            ch = imp(attention_group(dg, model, i, list(range(p.query.out_features))))
            h_scores.append(ch.detach().float().cpu().view(-1, dh).mean(1))
        f_scores.append(imp(ffn_group(dg, model, i, list(range(p.ffn_in.out_features)))).detach().float().cpu())
    return Scores(h_scores, f_scores)


# ----------------------------------------------------------------------------- calibration


def calibration_batches(tokenizer: "PreTrainedTokenizerBase", texts: list[str], labels: list[Any] | None,
                        pairs: list[str] | None, n_batches: int, batch_size: int, max_length: int) -> list[dict]:
    """Up to ``n_batches`` tokenized batches (with ``labels`` when given)."""
    import torch

    out = []
    for b in range(n_batches):
        lo = b * batch_size
        if lo >= len(texts):
            break
        hi = min(lo + batch_size, len(texts))
        enc = dict(tokenizer(texts[lo:hi], pairs[lo:hi] if pairs else None, padding=True, truncation=True,
                             max_length=max_length, return_tensors="pt"))
        if labels is not None:
            enc["labels"] = torch.tensor(labels[lo:hi])
        out.append(enc)
    if not out:
        raise EdgepressError("no calibration text: importance 'taylor'/'gradient' and num_drop_layers need data")
    return out


def task_calibration_batches(tokenizer: "PreTrainedTokenizerBase", data: Any, task: str, model_config: Any,
                             n_batches: int, batch_size: int, max_length: int) -> list[dict]:
    """Calibration batches for ``task``: labelled rows for classification/regression, text otherwise, and for
    NER / QA the training features (tags per token, start/end positions) padded as training pads them."""
    from compress.tasks import task_spec, training_features

    spec = task_spec(task)
    if not spec.token_level:
        labelled = spec.sentence_logits
        return calibration_batches(tokenizer, data.texts, data.labels if labelled else None,
                                   data.pairs if labelled else None, n_batches, batch_size, max_length)
    from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

    rows = training_features(task, tokenizer, model_config, data.head(n_batches * batch_size), max_length)
    collate = (DataCollatorForTokenClassification if spec.outputs == "words" else DataCollatorWithPadding)(
        tokenizer, return_tensors="pt")
    out = [dict(collate([rows[j] for j in range(lo, min(lo + batch_size, len(rows)))]))
           for lo in range(0, min(len(rows), n_batches * batch_size), batch_size)]
    if not out:
        raise EdgepressError("no calibration rows: importance 'taylor'/'gradient' and num_drop_layers need data")
    return out


def _inputs(model: "PreTrainedModel", batch: dict) -> dict:
    from compress.model.loading import model_input_names

    names = model_input_names(model)
    return {k: v for k, v in batch.items() if k in names and k != "labels"}


def task_loss(model: "PreTrainedModel", batch: dict, task: str, tokenizer: "PreTrainedTokenizerBase",
              generator: "torch.Generator", interface: Any = None) -> "torch.Tensor":
    """The loss whose gradients rank heads/neurons: labels where the task has them, self-supervised otherwise.

    embedding: unsupervised SimCSE (two dropout views pooled as ``interface`` says, in-batch InfoNCE, temperature 0.05);
    classification: cross-entropy on labels (or the model's own argmax); regression: MSE on labels;
    mlm: masked-token cross-entropy on 15 % of tokens; token-classification / question-answering: the head's
    cross-entropy on the gold tags / answer start and end (transformers computes it from the labels).
    """
    import torch
    import torch.nn.functional as F

    from compress.model.interface import sentence_vectors
    from compress.tasks import task_spec

    spec = task_spec(task)
    inputs = _inputs(model, batch)
    if spec.token_level:  # the head's own loss on tags / answer spans
        targets = ("labels", "start_positions", "end_positions")
        return model(**{**inputs, **{k: batch[k] for k in targets if k in batch}}).loss
    if spec.pooled:
        z1 = sentence_vectors(model(**inputs).last_hidden_state, inputs["attention_mask"], interface)
        z2 = sentence_vectors(model(**inputs).last_hidden_state, inputs["attention_mask"], interface)
        sim = F.cosine_similarity(z1.unsqueeze(1), z2.unsqueeze(0), dim=-1) / 0.05
        return F.cross_entropy(sim, torch.arange(sim.shape[0]))
    if spec.outputs == "tokens":
        ids = inputs["input_ids"].clone()
        special = torch.zeros_like(ids, dtype=torch.bool)
        for sid in tokenizer.all_special_ids:
            special |= ids == sid
        pick = (torch.rand(ids.shape, generator=generator) < 0.15) & ~special
        if not pick.any():
            pick = ~special
        labels = torch.where(pick, ids, torch.full_like(ids, -100))
        inputs["input_ids"] = torch.where(pick, torch.full_like(ids, tokenizer.mask_token_id), ids)
        logits = model(**inputs).logits
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
    logits = model(**inputs).logits
    if spec.scores:
        if "labels" not in batch:
            raise EdgepressError("importance 'taylor'/'gradient' for regression needs labels (data.label_column)")
        return F.mse_loss(logits.squeeze(-1), batch["labels"].float())
    target = batch["labels"] if "labels" in batch else logits.argmax(-1).detach()
    return F.cross_entropy(logits, target)


def gradient_scores(dg: Any, model: "PreTrainedModel", batches: list[dict], task: str,
                    tokenizer: "PreTrainedTokenizerBase", method: str, seed: int, interface: Any = None) -> Scores:
    """Taylor (``method='taylor'``) or head-mask-gradient + Taylor (``'gradient'``) scores."""
    import torch
    import torch_pruning as tp

    dh = arch.head_size(model)
    n_layers = len(arch.layers(model))
    gates = [torch.ones(arch.parts(model, i).query.out_features // dh, requires_grad=True) for i in range(n_layers)]
    head_acc = [torch.zeros_like(g) for g in gates]
    hooks = []
    if method == "gradient":
        for i in range(n_layers):
            def pre_hook(module, args, g=gates[i]):
                return (args[0] * g.repeat_interleave(dh).to(args[0].dtype),) + tuple(args[1:])
            hooks.append(arch.parts(model, i).attn_out.register_forward_pre_hook(pre_hook))
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    from compress.tasks import task_spec

    model.train(task_spec(task).pooled)  # SimCSE's two views differ only by dropout
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: seed it, then give it back
        torch.manual_seed(seed)
        try:
            for batch in batches:
                loss = task_loss(model, batch, task, tokenizer, gen, interface)
                loss.backward()
                for g, acc in zip(gates, head_acc):
                    if g.grad is not None:
                        acc += g.grad.abs()
                        g.grad = None
            taylor = tp.importance.GroupTaylorImportance(normalizer=None)
            scores = _group_scores(dg, model, taylor, heads=method == "taylor")
            if method == "gradient":
                scores.heads = [acc / acc.norm().clamp(min=1e-12) for acc in head_acc]
        finally:
            for h in hooks:
                h.remove()
            model.zero_grad(set_to_none=True)
            for p, f in zip(model.parameters(), flags):
                p.requires_grad_(f)
            model.train(was_training)
    return scores


# ----------------------------------------------------------------------------- the registry


@dataclass
class ImportanceInputs:
    """What an importance choice may use: the dependency graph, the model, calibration batches and the task."""

    graph: Any
    model: "PreTrainedModel"
    batches: list[dict] | None = None
    task: str = "embedding"
    tokenizer: "PreTrainedTokenizerBase | None" = None
    seed: int = 42
    interface: Any = None  # the teacher's ModelInterface: how token vectors pool into sentence vectors


@dataclass(frozen=True)
class ImportanceSpec:
    """One ``prune.importance`` choice: its scoring function and whether it needs calibration batches (gradients)."""

    name: str
    score: Callable[[ImportanceInputs], Scores]
    needs_data: bool


def _l1_scores(inp: ImportanceInputs) -> Scores:
    """Group L1 magnitude."""
    return magnitude_scores(inp.graph, inp.model, 1)


def _l2_scores(inp: ImportanceInputs) -> Scores:
    """Group L2 magnitude."""
    return magnitude_scores(inp.graph, inp.model, 2)


def _taylor_scores(inp: ImportanceInputs) -> Scores:
    """Group Taylor |w * dL/dw| for heads and FFN neurons, from the task loss on the calibration batches."""
    return gradient_scores(inp.graph, inp.model, inp.batches, inp.task, inp.tokenizer, "taylor", inp.seed,
                           inp.interface)


def _gradient_scores(inp: ImportanceInputs) -> Scores:
    """Head-mask gradients for heads, Taylor for FFN neurons, from the task loss on the calibration batches."""
    return gradient_scores(inp.graph, inp.model, inp.batches, inp.task, inp.tokenizer, "gradient", inp.seed,
                           inp.interface)


IMPORTANCE: dict[str, ImportanceSpec] = {spec.name: spec for spec in (
    ImportanceSpec("l1", _l1_scores, needs_data=False),
    ImportanceSpec("l2", _l2_scores, needs_data=False),
    ImportanceSpec("taylor", _taylor_scores, needs_data=True),
    ImportanceSpec("gradient", _gradient_scores, needs_data=True),
)}


def importance_spec(name: str) -> ImportanceSpec:
    """The registry entry for ``prune.importance`` = ``name``; an unknown name is refused in one line."""
    spec = IMPORTANCE.get(name)
    if spec is None:
        raise EdgepressError(f"unknown prune.importance '{name}'; choose from {', '.join(IMPORTANCE)}")
    return spec


def layer_scores(model: "PreTrainedModel", batches: list[dict], interface: Any = None) -> list[float]:
    """Per layer: mean (1 - cosine) between the output pooled as ``interface`` says (mean when None) with and
    without that layer (low = removable)."""
    import torch
    import torch.nn.functional as F

    from compress.distill.student import _parent_of
    from compress.model.interface import sentence_vectors
    from compress.model.loading import base_model

    enc = base_model(model)
    stack = arch.layers(model)
    parent = _parent_of(model, stack)
    was_training = model.training
    model.eval()

    def pooled() -> list["torch.Tensor"]:
        with torch.inference_mode():
            return [sentence_vectors(enc(**_inputs(enc, b)).last_hidden_state, b["attention_mask"], interface)
                    for b in batches]

    full = pooled()
    scores = []
    try:
        for i in range(len(stack)):
            parent.layer = torch.nn.ModuleList([m for j, m in enumerate(stack) if j != i])
            without = pooled()
            scores.append(float(torch.cat([1 - F.cosine_similarity(a, b, dim=-1) for a, b in zip(full, without)]).mean()))
    finally:
        parent.layer = stack
        model.train(was_training)
    return scores
