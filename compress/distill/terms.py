"""The distillation loss terms as a registry: one small function per ``LossWeights`` field.

Each entry says which tasks it applies to (a test on the task's spec) and what it needs from the forward passes; the Trainer's
``compute_loss`` runs the entries whose weight is above 0, in registry order, and ``_check_compatible``
reads the task table from here. The loss math itself lives in :mod:`compress.distill.losses`.

A new task gets the terms whose test its spec passes (KL for any head with logits, the hard loss for a task
that trains on labels); a term of its own (e.g. a per-token KL) is registered here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from compress.distill import losses as L
from compress.tasks import TASKS as TASK_SPECS
from compress.tasks import task_spec

if TYPE_CHECKING:
    from compress.distill.config import DistillConfig, LossWeights
    from compress.tasks.spec import TaskSpec

# What a term can need from the forward passes (TermSpec.needs):
LAST_HIDDEN = "last_hidden"        # student and teacher last hidden states (TermContext.student_last/teacher_last)
POOLED = "pooled"                  # pooled sentence embeddings (TermContext.embeddings)
LOGITS = "logits"                  # student logits and teacher logits (forward or cache)
LABELS = "labels"                  # gold labels in the batch ("labels")
MLM_LABELS = "mlm_labels"          # masked-token labels from the MLM collator ("mlm_labels")
HIDDEN_STATES = "hidden_states"    # every layer's hidden states from both models (not cacheable)
ATTENTIONS = "attentions"          # attention probabilities from both models (not cacheable)
VALUE_HOOK = "value_hook"          # last-layer value projections captured by forward hooks (not cacheable)
SAME_WIDTH = "same_width"          # student and teacher hidden sizes must be equal

TASKS = tuple(TASK_SPECS)  # every task of the registry (compress/tasks/)


def every_task(spec: "TaskSpec") -> bool:
    """The terms on the encoder's hidden states apply to every task."""
    return True


@dataclass
class TermContext:
    """What one training step offers the loss terms: both models' outputs, the batch and the config."""

    task: str
    cfg: "DistillConfig"
    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    student_out: Any
    teacher_out: Any | None  # None when the teacher's tensors come from the cache (inputs["teacher_*"])
    student_last: torch.Tensor
    teacher_last: torch.Tensor | None
    pooler: Any
    student: Any
    teacher: Any
    layer_map: list[tuple[int, int]]
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    _embeddings: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(student, teacher) pooled sentence embeddings, computed once per step; the teacher's from the cache if there."""
        if self._embeddings is None:
            s_emb = self.pooler.pooled(self.student_last, self.mask)
            t_emb = self.inputs.get("teacher_embedding")
            if t_emb is None:
                t_emb = self.pooler.pooled(self.teacher_last, self.mask)
            self._embeddings = (s_emb, t_emb)
        return self._embeddings

    def teacher_logits(self) -> torch.Tensor | None:
        """The teacher's logits: cached ones when the batch carries them, else the teacher forward's."""
        return self.inputs.get("teacher_logits", self.teacher_out.logits if self.teacher_out is not None else None)


@dataclass(frozen=True)
class TermSpec:
    """One loss term: its ``LossWeights`` name, the function computing it, which tasks' specs it applies to, its
    needs."""

    name: str
    compute: Callable[[TermContext], torch.Tensor]
    applies: Callable[["TaskSpec"], bool]
    needs: frozenset[str]

    @property
    def tasks(self) -> frozenset[str]:
        """The registered tasks the term applies to."""
        return frozenset(n for n, s in TASK_SPECS.items() if self.applies(s))


TERMS: dict[str, TermSpec] = {}


def register(name: str, applies: Callable[["TaskSpec"], bool], needs: tuple[str, ...]) -> Callable:
    """Decorator: add the function as the term ``name`` for the tasks whose spec ``applies`` accepts (registry
    order is the order terms are summed and logged)."""

    def add(fn: Callable[[TermContext], torch.Tensor]) -> Callable[[TermContext], torch.Tensor]:
        if name in TERMS:
            raise ValueError(f"loss term '{name}' is registered twice")
        TERMS[name] = TermSpec(name, fn, applies, frozenset(needs))
        return fn

    return add


def active_terms(weights: "LossWeights") -> list[TermSpec]:
    """The registered terms whose weight is above 0, in registry order."""
    return [spec for name, spec in TERMS.items() if getattr(weights, name) > 0]


def needed(weights: "LossWeights", need: str) -> bool:
    """Whether any term with a weight above 0 needs ``need`` (one of the constants above)."""
    return any(need in spec.needs for spec in active_terms(weights))


def allowed_terms(task: str) -> set[str]:
    """Names of the terms that apply to ``task`` (KeyError for a task the registry lacks)."""
    spec = TASK_SPECS[task]
    return {name for name, term in TERMS.items() if term.applies(spec)}


@register("cos", every_task, (LAST_HIDDEN, SAME_WIDTH))
def cos_term(ctx: TermContext) -> torch.Tensor:
    """1 - cosine between student and teacher last hidden states over real tokens."""
    return L.hidden_cosine(ctx.student_last, ctx.teacher_last, ctx.mask)


@register("embed_mse", every_task, (POOLED, SAME_WIDTH))
def embed_mse_term(ctx: TermContext) -> torch.Tensor:
    """MSE between pooled student and teacher sentence embeddings."""
    return L.embedding_mse(*ctx.embeddings())


@register("embed_cos", every_task, (POOLED, SAME_WIDTH))
def embed_cos_term(ctx: TermContext) -> torch.Tensor:
    """1 - cosine between pooled student and teacher sentence embeddings."""
    return L.embedding_cosine(*ctx.embeddings())


@register("kl", lambda s: not s.pooled, (LOGITS,))  # every head with logits
def kl_term(ctx: TermContext) -> torch.Tensor:
    """Soft-label KL on logits; for MLM only at masked positions when ``kl_on_masked_only``; for token
    classification per token at real (non-padding) tokens; for QA on the start and end distributions
    (DistilBERT's SQuAD recipe)."""
    d, outputs = ctx.cfg, task_spec(ctx.task).outputs
    if outputs == "answers":
        s, t = ctx.student_out, ctx.teacher_out
        return L.span_kl(s.start_logits, s.end_logits, t.start_logits, t.end_logits, ctx.mask, d.temperature,
                         d.t_squared)
    logits = ctx.student_out.logits
    if outputs == "words":
        return L.token_kl(logits, ctx.teacher_logits(), ctx.mask, d.temperature, d.t_squared)
    if outputs == "tokens" and d.kl_on_masked_only:
        return L.masked_positions_kl(logits, ctx.teacher_logits(), ctx.inputs["mlm_labels"], d.temperature,
                                     d.t_squared, d.kl_reduction)
    return L.soft_label_kl(logits, ctx.teacher_logits(), d.temperature, d.t_squared, d.kl_reduction)


@register("mlm", lambda s: s.outputs == "tokens", (LOGITS, MLM_LABELS))  # a vocabulary distribution per token
def mlm_term(ctx: TermContext) -> torch.Tensor:
    """Cross-entropy of the student's MLM logits on the masked tokens."""
    logits = ctx.student_out.logits
    return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), ctx.inputs["mlm_labels"].view(-1),
                                             ignore_index=-100)


@register("hard", lambda s: s.train_labels, (LOGITS, LABELS))  # tasks that train on gold labels
def hard_term(ctx: TermContext) -> torch.Tensor:
    """Cross-entropy (classification; per labelled token for token classification; of the gold start and end
    positions for QA) or MSE (regression)."""
    outputs = task_spec(ctx.task).outputs
    if outputs == "answers":
        out = ctx.student_out
        return L.span_loss(out.start_logits, out.end_logits, ctx.inputs["start_positions"], ctx.inputs["end_positions"])
    logits = ctx.student_out.logits
    if outputs == "words":
        return L.hard_label_loss(logits.reshape(-1, logits.shape[-1]), ctx.inputs["labels"].reshape(-1),
                                 "classification")
    return L.hard_label_loss(logits, ctx.inputs["labels"], ctx.task)


@register("hidden_mse", every_task, (HIDDEN_STATES,))
def hidden_mse_term(ctx: TermContext) -> torch.Tensor:
    """Mean over mapped (student, teacher) layers of the hidden-state MSE (student projected when widths differ)."""
    proj = getattr(ctx.student, "distill_projection", None)
    s_hidden, t_hidden = ctx.student_out.hidden_states, ctx.teacher_out.hidden_states
    parts = [L.hidden_mse(s_hidden[si], t_hidden[ti], ctx.mask, proj) for si, ti in ctx.layer_map]
    return torch.stack(parts).mean()


@register("attn_kl", every_task, (ATTENTIONS,))
def attn_kl_term(ctx: TermContext) -> torch.Tensor:
    """KL between the last layers' attention distributions."""
    return L.attention_kl(ctx.student_out.attentions[-1], ctx.teacher_out.attentions[-1], ctx.mask)


def _num_heads(config: Any, default: int | None = None) -> int:
    """Attention heads of a BERT-style (num_attention_heads) or DistilBERT-style (n_heads) config."""
    return getattr(config, "num_attention_heads", getattr(config, "n_heads", default))


@register("value_kl", every_task, (VALUE_HOOK,))
def value_kl_term(ctx: TermContext) -> torch.Tensor:
    """KL between the last layers' value-relation matrices (MiniLM), from the hooked value projections."""
    heads = _num_heads(ctx.student.config)
    t_heads = _num_heads(ctx.teacher.config, heads)
    vs = L.value_relation(ctx.values["s"], heads, ctx.mask)
    vt = L.value_relation(ctx.values["t"], t_heads, ctx.mask)
    return L.attention_kl(vs, vt, ctx.mask)
