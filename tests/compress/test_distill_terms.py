"""The loss-term registry: each term on its own against losses.py or a hand computation, the task table,
and the Trainer's compute_loss giving the same total (and per-term logs) as the if-ladder it replaced."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from compress.distill import losses as L
from compress.distill import terms as T
from compress.distill.config import DistillConfig, LossWeights
from compress.core.errors import EdgepressError

B, S, W, V, H = 2, 5, 8, 11, 2


class MeanPooler:
    """The pooling SentencePooler does for mean mode, by hand."""

    def pooled(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)


def _ctx(task: str = "mlm", cfg: DistillConfig | None = None, teacher_out=..., inputs: dict | None = None,
         student=None, values: dict | None = None, layer_map=((1, 1), (2, 3))) -> T.TermContext:
    """A context from small random tensors: 2 rows x 5 tokens (the second row padded after 3), width 8."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    attn = lambda: torch.softmax(r(B, H, S, S), -1)  # noqa: E731
    s_out = SimpleNamespace(logits=r(B, S, V) if task == "mlm" else r(B, 3), hidden_states=[r(B, S, W) for _ in range(3)],
                            attentions=[attn(), attn()])
    if teacher_out is ...:
        teacher_out = SimpleNamespace(logits=r(*s_out.logits.shape), hidden_states=[r(B, S, W) for _ in range(4)],
                                      attentions=[attn(), attn()])
    base = {"attention_mask": mask, "mlm_labels": torch.tensor([[-100, 3, -100, 7, -100], [1, -100, -100, -100, -100]]),
            "labels": torch.tensor([0, 2])}
    conf = lambda n: SimpleNamespace(config=SimpleNamespace(num_attention_heads=n))  # noqa: E731
    return T.TermContext(
        task=task, cfg=cfg or DistillConfig(), inputs={**base, **(inputs or {})}, mask=mask, student_out=s_out,
        teacher_out=teacher_out, student_last=s_out.hidden_states[-1],
        teacher_last=None if teacher_out is None else teacher_out.hidden_states[-1], pooler=MeanPooler(),
        student=student or conf(H), teacher=conf(H), layer_map=list(layer_map),
        values=values if values is not None else {"s": r(B, S, W), "t": r(B, S, W)})


def test_registry_holds_exactly_the_loss_weights_in_the_order_the_ladder_summed_them():
    assert list(T.TERMS) == ["cos", "embed_mse", "embed_cos", "kl", "mlm", "hard", "hidden_mse", "attn_kl", "value_kl"]
    assert set(T.TERMS) == set(LossWeights.model_fields)
    for name, spec in T.TERMS.items():
        assert spec.name == name and spec.compute.__doc__ and spec.tasks <= set(T.TASKS)


def test_task_table_is_the_one_check_compatible_had():
    inner = {"cos", "embed_mse", "embed_cos", "hidden_mse", "attn_kl", "value_kl"}
    assert T.allowed_terms("embedding") == inner
    assert T.allowed_terms("mlm") == inner | {"kl", "mlm"}
    assert T.allowed_terms("classification") == inner | {"kl", "hard"}
    assert T.allowed_terms("regression") == inner | {"kl", "hard"}  # kl is refused for regression by its own message
    assert T.allowed_terms("token-classification") == inner | {"kl", "hard"}  # per-token KL, token CE
    assert T.allowed_terms("question-answering") == inner | {"kl", "hard"}  # start/end KL, span loss
    with pytest.raises(KeyError):
        T.allowed_terms("summarization")


def test_active_terms_and_needs_follow_the_weights():
    w = LossWeights(value_kl=0.5, cos=1.0, hidden_mse=0.1)
    assert [s.name for s in T.active_terms(w)] == ["cos", "hidden_mse", "value_kl"]
    assert T.needed(w, T.HIDDEN_STATES) and T.needed(w, T.VALUE_HOOK) and T.needed(w, T.SAME_WIDTH)
    assert not T.needed(w, T.ATTENTIONS) and not T.needed(w, T.LOGITS)
    assert T.needed(LossWeights(attn_kl=1.0), T.ATTENTIONS)
    assert not T.needed(LossWeights(kl=1.0, hard=1.0, hidden_mse=1.0), T.SAME_WIDTH)
    assert T.active_terms(LossWeights()) == []


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        T.register("cos", T.TASKS, ())(lambda ctx: torch.zeros(()))
    assert T.TERMS["cos"].compute is T.cos_term


def test_cos_term_is_hidden_cosine_over_real_tokens():
    ctx = _ctx()
    s, t = ctx.student_last, ctx.teacher_last
    real = [(0, i) for i in range(5)] + [(1, i) for i in range(3)]
    hand = sum(1 - float(F.cosine_similarity(s[b, i], t[b, i], dim=0)) for b, i in real) / len(real)
    assert math.isclose(float(T.cos_term(ctx)), hand, rel_tol=1e-5)


def test_embed_terms_pool_over_real_tokens_and_share_one_pooling():
    ctx = _ctx()
    s_emb = torch.stack([ctx.student_last[0].mean(0), ctx.student_last[1, :3].mean(0)])
    t_emb = torch.stack([ctx.teacher_last[0].mean(0), ctx.teacher_last[1, :3].mean(0)])
    assert math.isclose(float(T.embed_mse_term(ctx)), float(((s_emb - t_emb) ** 2).mean()), rel_tol=1e-5)
    hand_cos = float((1 - F.cosine_similarity(s_emb, t_emb, dim=-1)).mean())
    assert math.isclose(float(T.embed_cos_term(ctx)), hand_cos, rel_tol=1e-5)
    assert ctx.embeddings() is ctx.embeddings()


def test_embed_terms_use_the_cached_teacher_embedding_when_the_batch_has_one():
    cached = torch.ones(B, W)
    ctx = _ctx(teacher_out=None, inputs={"teacher_embedding": cached})
    s_emb, t_emb = ctx.embeddings()
    assert t_emb is cached
    assert torch.allclose(T.embed_mse_term(ctx), L.embedding_mse(s_emb, cached))


def test_kl_term_for_mlm_is_masked_positions_kl_or_the_full_kl():
    cfg = DistillConfig(temperature=3.0, t_squared=False, kl_reduction="sum")
    ctx = _ctx("mlm", cfg)
    s, t, labels = ctx.student_out.logits, ctx.teacher_out.logits, ctx.inputs["mlm_labels"]
    assert torch.allclose(T.kl_term(ctx), L.masked_positions_kl(s, t, labels, 3.0, False, "sum"))
    full = _ctx("mlm", DistillConfig(temperature=3.0, kl_on_masked_only=False))
    assert torch.allclose(T.kl_term(full), L.soft_label_kl(s, t, 3.0, True, "batchmean"))
    assert not torch.allclose(T.kl_term(full), L.masked_positions_kl(s, t, labels, 3.0))


def test_kl_term_for_classification_prefers_cached_teacher_logits():
    ctx = _ctx("classification")
    s = ctx.student_out.logits
    assert torch.allclose(T.kl_term(ctx), L.soft_label_kl(s, ctx.teacher_out.logits, 2.0))
    cached = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    ctx = _ctx("classification", teacher_out=None, inputs={"teacher_logits": cached})
    ps, pt = torch.log_softmax(s / 2, -1), torch.softmax(cached / 2, -1)
    hand = float((pt * (pt.log() - ps)).sum() / B * 4)  # batchmean, times T^2
    assert math.isclose(float(T.kl_term(ctx)), hand, rel_tol=1e-5)


def test_mlm_term_is_cross_entropy_on_masked_tokens_only():
    ctx = _ctx("mlm")
    logits, labels = ctx.student_out.logits, ctx.inputs["mlm_labels"]
    picked = [(0, 1, 3), (0, 3, 7), (1, 0, 1)]
    hand = -sum(float(torch.log_softmax(logits[b, i], -1)[c]) for b, i, c in picked) / len(picked)
    assert math.isclose(float(T.mlm_term(ctx)), hand, rel_tol=1e-5)


def test_hard_term_is_cross_entropy_or_mse_by_task():
    ctx = _ctx("classification")
    assert torch.allclose(T.hard_term(ctx), F.cross_entropy(ctx.student_out.logits, torch.tensor([0, 2])))
    reg = _ctx("regression", inputs={"labels": torch.tensor([0.5, 2.0])})
    reg.student_out.logits = torch.tensor([[1.0], [1.0]])
    assert math.isclose(float(T.hard_term(reg)), (0.25 + 1.0) / 2, rel_tol=1e-6)


def test_hidden_mse_term_averages_the_mapped_layers_and_uses_the_projection():
    ctx = _ctx(layer_map=((1, 1), (2, 3)))
    s, t, m = ctx.student_out.hidden_states, ctx.teacher_out.hidden_states, ctx.mask
    expected = (L.hidden_mse(s[1], t[1], m) + L.hidden_mse(s[2], t[3], m)) / 2
    assert torch.allclose(T.hidden_mse_term(ctx), expected)
    proj = torch.nn.Linear(W, W)
    student = SimpleNamespace(config=SimpleNamespace(num_attention_heads=H), distill_projection=proj)
    ctx = _ctx(student=student, layer_map=((2, 3),))
    s, t = ctx.student_out.hidden_states, ctx.teacher_out.hidden_states
    assert torch.allclose(T.hidden_mse_term(ctx), L.hidden_mse(s[2], t[3], ctx.mask, proj))


def test_attn_kl_term_compares_the_last_layers():
    ctx = _ctx()
    s, t = ctx.student_out.attentions, ctx.teacher_out.attentions
    assert torch.allclose(T.attn_kl_term(ctx), L.attention_kl(s[-1], t[-1], ctx.mask))
    assert not torch.allclose(T.attn_kl_term(ctx), L.attention_kl(s[0], t[0], ctx.mask))


def test_value_kl_term_reads_the_hooked_values_and_each_models_head_count():
    ctx = _ctx()
    vs, vt, m = ctx.values["s"], ctx.values["t"], ctx.mask
    expected = L.attention_kl(L.value_relation(vs, H, m), L.value_relation(vt, H, m), m)
    assert torch.allclose(T.value_kl_term(ctx), expected)
    ctx.student = ctx.teacher = SimpleNamespace(config=SimpleNamespace(n_heads=4))  # DistilBERT config names
    expected = L.attention_kl(L.value_relation(vs, 4, m), L.value_relation(vt, 4, m), m)
    assert torch.allclose(T.value_kl_term(ctx), expected)


# ------------------------------------------------------------------ _check_compatible reads the table


def _models(student_width: int = 32):
    conf = lambda w: SimpleNamespace(config=SimpleNamespace(hidden_size=w))  # noqa: E731
    return conf(32), conf(student_width)


@pytest.mark.parametrize("task,weights,message", [
    ("embedding", LossWeights(kl=1.0, cos=1.0), "distill.loss.kl does not apply to task 'embedding' (usable: attn_kl, "
                                                 "cos, embed_cos, embed_mse, hidden_mse, value_kl)"),
    ("mlm", LossWeights(hard=1.0), "distill.loss.hard does not apply to task 'mlm'"),
    ("classification", LossWeights(mlm=1.0), "distill.loss.mlm does not apply to task 'classification'"),
    ("regression", LossWeights(kl=1.0), "distill.loss.kl needs class probabilities"),
])
def test_check_compatible_refuses_terms_outside_the_task_table(task, weights, message):
    from compress.distill.engine import _check_compatible

    teacher, student = _models()
    with pytest.raises(EdgepressError, match=re.escape(message)):
        _check_compatible(teacher, student, task, DistillConfig(loss=weights))


def test_check_compatible_refuses_same_width_terms_for_narrower_students_only():
    from compress.distill.engine import _check_compatible

    teacher, narrow = _models(16)
    for name in ("cos", "embed_mse", "embed_cos"):
        with pytest.raises(EdgepressError, match="cos/embed losses need equal widths"):
            _check_compatible(teacher, narrow, "embedding", DistillConfig(loss=LossWeights(**{name: 1.0})))
    _check_compatible(teacher, narrow, "classification", DistillConfig(loss=LossWeights(kl=1.0, hard=1.0, hidden_mse=1.0)))
    _check_compatible(*_models(), "mlm", DistillConfig(loss=LossWeights(kl=1.0, mlm=1.0, cos=1.0)))


# ------------------------------------------------------------------ compute_loss on a tiny model


def _ladder(task: str, d: DistillConfig, s_out, t_out, inputs: dict, model, teacher, layer_map, pooler,
            values: dict) -> dict[str, torch.Tensor]:
    """The if-ladder compute_loss had before the registry, term by term (the reference)."""
    w, mask = d.loss, inputs["attention_mask"]
    s_last = s_out.last_hidden_state if task == "embedding" else s_out.hidden_states[-1]
    t_last = inputs.get("teacher_last_hidden")
    if t_last is None:
        t_last = t_out.last_hidden_state if task == "embedding" else t_out.hidden_states[-1]
    terms = {}
    if w.cos > 0:
        terms["cos"] = L.hidden_cosine(s_last, t_last, mask)
    if w.embed_mse > 0 or w.embed_cos > 0:
        s_emb = pooler.pooled(s_last, mask)
        t_emb = inputs.get("teacher_embedding")
        if t_emb is None:
            t_emb = pooler.pooled(t_last, mask)
        if w.embed_mse > 0:
            terms["embed_mse"] = L.embedding_mse(s_emb, t_emb)
        if w.embed_cos > 0:
            terms["embed_cos"] = L.embedding_cosine(s_emb, t_emb)
    if w.kl > 0:
        t_logits = inputs.get("teacher_logits", t_out.logits if t_out is not None else None)
        if task == "mlm" and d.kl_on_masked_only:
            terms["kl"] = L.masked_positions_kl(s_out.logits, t_logits, inputs["mlm_labels"], d.temperature,
                                                d.t_squared, d.kl_reduction)
        else:
            terms["kl"] = L.soft_label_kl(s_out.logits, t_logits, d.temperature, d.t_squared, d.kl_reduction)
    if w.mlm > 0:
        logits = s_out.logits
        terms["mlm"] = F.cross_entropy(logits.view(-1, logits.shape[-1]), inputs["mlm_labels"].view(-1),
                                       ignore_index=-100)
    if w.hard > 0:
        terms["hard"] = L.hard_label_loss(s_out.logits, inputs["labels"], task)
    if w.hidden_mse > 0:
        parts = [L.hidden_mse(s_out.hidden_states[si], t_out.hidden_states[ti], mask, None) for si, ti in layer_map]
        terms["hidden_mse"] = torch.stack(parts).mean()
    if w.attn_kl > 0:
        terms["attn_kl"] = L.attention_kl(s_out.attentions[-1], t_out.attentions[-1], mask)
    if w.value_kl > 0:
        heads, t_heads = model.config.num_attention_heads, teacher.config.num_attention_heads
        terms["value_kl"] = L.attention_kl(L.value_relation(values["s"], heads, mask),
                                           L.value_relation(values["t"], t_heads, mask), mask)
    return terms


MIXES = {
    "embedding": ("embedding", LossWeights(cos=1.0, embed_mse=1.0, embed_cos=0.3, hidden_mse=0.5, attn_kl=0.2,
                                           value_kl=0.5)),
    "mlm": ("mlm", LossWeights(kl=1.0, mlm=0.5, cos=1.0, attn_kl=0.1)),
    "classification": ("classification", LossWeights(kl=1.0, hard=0.5, embed_cos=1.0, hidden_mse=0.2)),
    "classification-outputs": ("classification", LossWeights(kl=1.0, hard=0.5, embed_cos=1.0, embed_mse=0.1)),
    "embedding-outputs": ("embedding", LossWeights(cos=1.0, embed_mse=1.0)),
    "regression": ("regression", LossWeights(hard=1.0, cos=1.0, embed_mse=0.4)),
}


def _cases() -> list:
    """Every mix with the teacher run in the step; those without inner-layer terms also from teacher tensors."""
    from compress.distill.engine import can_cache

    return [pytest.param(mix, fixed, id=f"{mix}-{'teacher-tensors' if fixed else 'teacher-forward'}")
            for mix in sorted(MIXES) for fixed in (False, True)
            if not fixed or can_cache(MIXES[mix][0], DistillConfig(loss=MIXES[mix][1]))]


@pytest.mark.parametrize("mix,fixed_teacher", _cases())
def test_compute_loss_total_and_logged_terms_match_the_ladder(mix, fixed_teacher, tiny_model_dir, tmp_path):
    from transformers import TrainingArguments

    from compress.distill.engine import DistillCollator, DistillationTrainer, TokenizedExamples, _layer_map
    from compress.distill.student import student_from_teacher
    from compress.model.interface import ModelInterface, SentencePooler
    from compress.model.loading import load_model, load_tokenizer

    task, weights = MIXES[mix]
    cfg = DistillConfig(loss=weights)
    path = tiny_model_dir("bert", {"embedding": "mlm"}.get(task, task))
    teacher = load_model(str(path), task).eval()
    tok = load_tokenizer(str(path))
    student, picked = student_from_teacher(teacher, num_layers=1)
    student.eval()  # no dropout: both computations see the same forward
    for m in (student, teacher):
        m.config._attn_implementation = "eager"
    layer_map = _layer_map(1, 2, picked)
    pooler = SentencePooler(ModelInterface("embedding"), 32)
    args = TrainingArguments(output_dir=str(tmp_path / "t"), use_cpu=True, report_to=[], disable_tqdm=True)
    trainer = DistillationTrainer.build(model=student, args=args, teacher=teacher, task=task, dcfg=cfg,
                                        layer_map=layer_map, projection_needed=False, pooler=pooler,
                                        fixed_teacher=fixed_teacher)
    texts = ["the function returns a list", "a module holds classes", "print the value"]
    labels = [1.5, 0.0, 3.0] if task == "regression" else [1, 0, 1] if task == "classification" else None
    rows = TokenizedExamples(tok, texts, None, labels, 16)
    torch.manual_seed(0)
    batch = DistillCollator(tok, cfg.mlm_probability if task == "mlm" else None)([rows[i] for i in range(3)])
    if fixed_teacher:
        batch["key"] = torch.arange(3)
    inputs = dict(batch)
    total = trainer.compute_loss(student, inputs)

    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch]
    need = weights.hidden_mse > 0
    s_out = student(**{k: batch[k] for k in names}, output_hidden_states=task != "embedding" or need,
                    output_attentions=weights.attn_kl > 0)
    t_out = teacher(**{k: batch[k] for k in names}, output_hidden_states=True, output_attentions=weights.attn_kl > 0)
    if fixed_teacher:  # the cache path hands over fp16-rounded last hidden states, pooled embedding, logits
        t_last = (t_out.last_hidden_state if task == "embedding" else t_out.hidden_states[-1]).half().float()
        cached = {"teacher_last_hidden": t_last, "teacher_embedding": pooler.pooled(t_last, batch["attention_mask"])}
        if task in ("classification", "regression"):
            cached["teacher_logits"] = t_out.logits
        ref_inputs, ref_t_out = {**batch, **cached}, None
    else:
        ref_inputs, ref_t_out = batch, t_out
    expected = _ladder(task, cfg, s_out, ref_t_out, ref_inputs, student, teacher, layer_map, pooler,
                       dict(trainer._values))
    expected_total = sum(getattr(weights, k) * v for k, v in expected.items())
    assert set(expected) == {k for k, v in weights.model_dump().items() if v > 0}
    assert torch.allclose(total, expected_total, rtol=1e-5, atol=1e-6), (float(total), float(expected_total))
    assert list(trainer._sums) == list(expected)  # same terms logged, in the ladder's order
    for k, v in expected.items():
        assert math.isclose(trainer._sums[k], float(v.detach()), rel_tol=1e-5, abs_tol=1e-6), k
    assert trainer._count == 1
