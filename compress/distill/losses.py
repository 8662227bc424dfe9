"""Distillation losses, each a pure function on tensors (pinned by hand-computed unit tests)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from compress.model.loading import mean_pool  # noqa: F401  (one pooling for losses, export and evaluation)


def soft_label_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                  t_squared: bool = True, reduction: str = "batchmean") -> torch.Tensor:
    """KL(teacher_T || student_T) over the last dim; times T^2 when ``t_squared`` (Hinton/DistilBERT)."""
    s = F.log_softmax(student_logits / temperature, dim=-1)
    t = F.softmax(teacher_logits / temperature, dim=-1)
    loss = F.kl_div(s, t, reduction=reduction)
    return loss * temperature**2 if t_squared else loss


def masked_positions_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                        temperature: float, t_squared: bool = True, reduction: str = "batchmean") -> torch.Tensor:
    """Soft-label KL restricted to MLM positions (labels != -100): avoids B*S*V teacher targets."""
    sel = labels != -100
    if not sel.any():
        return student_logits.sum() * 0.0
    return soft_label_kl(student_logits[sel], teacher_logits[sel], temperature, t_squared, reduction)


def hidden_cosine(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                  attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cos) between student and teacher token vectors over non-padding tokens (DistilBERT α_cos)."""
    sel = attention_mask.bool()
    s, t = student_hidden[sel], teacher_hidden[sel]
    return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()


def embedding_mse(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """MSE between pooled sentence embeddings (sentence-transformers' distillation loss)."""
    return F.mse_loss(student_emb, teacher_emb)


def embedding_cosine(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cos) between pooled sentence embeddings."""
    return (1.0 - F.cosine_similarity(student_emb, teacher_emb, dim=-1)).mean()


def hidden_mse(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor,
               projection: torch.nn.Module | None = None) -> torch.Tensor:
    """TinyBERT hidden-state MSE over non-padding tokens, projecting the student when widths differ."""
    s = projection(student_hidden) if projection is not None else student_hidden
    sel = attention_mask.bool()
    return F.mse_loss(s[sel], teacher_hidden[sel])


def attention_kl(student_attn: torch.Tensor, teacher_attn: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of attention distributions [B, H, S, S], averaged over real query tokens and heads."""
    eps = 1e-12
    kl = (teacher_attn * ((teacher_attn + eps).log() - (student_attn + eps).log())).sum(-1)  # [B, H, S]
    q = attention_mask[:, None, :].to(kl.dtype).expand_as(kl)
    return (kl * q).sum() / q.sum().clamp(min=1.0)


def value_relation(values: torch.Tensor, num_heads: int, attention_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM's value relation softmax(V V^T / sqrt(d)) per head, padding keys masked out: [B, H, S, S]."""
    b, s, w = values.shape
    v = values.view(b, s, num_heads, w // num_heads).transpose(1, 2)
    scores = v @ v.transpose(-1, -2) / (w // num_heads) ** 0.5
    scores = scores.masked_fill(~attention_mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min)
    return scores.softmax(-1)


def hard_label_loss(logits: torch.Tensor, labels: torch.Tensor, task: str) -> torch.Tensor:
    """Cross-entropy on class ids (classification; rows labelled -100 are skipped) or MSE on scores (regression)."""
    from compress.tasks import task_spec

    if task_spec(task).scores:
        return F.mse_loss(logits.view(-1), labels.view(-1).to(logits.dtype))
    labels = labels.long()
    if not bool((labels != -100).any()):  # a batch of unlabelled rows (data.unlabeled): no hard term
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=-100)


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, token_mask: torch.Tensor,
             temperature: float, t_squared: bool = True) -> torch.Tensor:
    """Per-token KL(teacher_T || student_T) on tag logits [B, S, C], averaged over tokens where ``token_mask``
    is 1 (real tokens; padding never counts), times T^2 when ``t_squared`` (token classification / NER)."""
    sel = token_mask.bool()
    if not bool(sel.any()):
        return student_logits.sum() * 0.0
    return soft_label_kl(student_logits[sel], teacher_logits[sel], temperature, t_squared, "batchmean")


def span_kl(student_start: torch.Tensor, student_end: torch.Tensor, teacher_start: torch.Tensor,
            teacher_end: torch.Tensor, attention_mask: torch.Tensor, temperature: float,
            t_squared: bool = True) -> torch.Tensor:
    """DistilBERT's SQuAD distillation: the mean of the start- and end-position KLs over each sequence's
    positions (padding masked out of both distributions), times T^2 when ``t_squared``."""
    pad = ~attention_mask.bool()
    low = torch.finfo(student_start.dtype).min

    def kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return soft_label_kl(s.masked_fill(pad, low), t.masked_fill(pad, low), temperature, t_squared, "batchmean")

    return (kl(student_start, teacher_start) + kl(student_end, teacher_end)) / 2


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
              end_positions: torch.Tensor) -> torch.Tensor:
    """Hard-label span loss: cross-entropy of the gold start and end positions, averaged (as transformers'
    ``*ForQuestionAnswering`` heads compute it)."""
    return (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
