"""The pruning-importance registry: each ``prune.importance`` entry scored on its own on a tiny BERT, the table
matches the config's choices, and an unknown name is refused in one line."""

from __future__ import annotations

import typing

import pytest
import torch

from compress.data.rows import builtin_pydoc_sentences
from compress.core.errors import EdgepressError
from compress.model.loading import load_model, load_tokenizer
from compress.prune import arch, core
from compress.prune import importance as I
from compress.prune.config import PruneConfig

TEXTS = builtin_pydoc_sentences()[:16]


@pytest.fixture
def tiny(tiny_model_dir):
    """A tiny BERT classifier (2 layers, 4 heads, FFN 64), its tokenizer, and two labelled calibration batches."""
    path = tiny_model_dir("bert", "classification")
    model, tok = load_model(str(path), "classification").eval(), load_tokenizer(str(path))
    batches = I.calibration_batches(tok, TEXTS, [i % 2 for i in range(len(TEXTS))], None, 2, 8, 24)
    return model, tok, batches


def _inputs(model, tok, batches) -> I.ImportanceInputs:
    return I.ImportanceInputs(core.build_graph(model), model, batches, "classification", tok, seed=3)


def _same(a: I.Scores, b: I.Scores) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.heads + a.ffn, b.heads + b.ffn))


def test_registry_names_are_the_config_choices():
    choices = typing.get_args(PruneConfig.model_fields["importance"].annotation)
    assert list(I.IMPORTANCE) == list(choices)
    for name, spec in I.IMPORTANCE.items():
        assert spec.name == name and spec.score.__doc__ and I.importance_spec(name) is spec
        assert spec.needs_data == PruneConfig(importance=name, head_ratio=0.5).needs_data


def test_unknown_importance_is_refused_in_one_line():
    with pytest.raises(EdgepressError) as err:
        I.importance_spec("fisher")
    assert str(err.value) == "unknown prune.importance 'fisher'; choose from l1, l2, taylor, gradient"


@pytest.mark.parametrize("name,p", [("l1", 1), ("l2", 2)])
def test_magnitude_entries_score_a_zeroed_head_and_neurons_lowest(name, p, tiny):
    model, tok, _ = tiny
    dh = arch.head_size(model)
    with torch.no_grad():
        part = arch.parts(model, 1)
        for lin in (part.query, part.key, part.value):
            lin.weight[2 * dh:3 * dh].zero_()
            lin.bias[2 * dh:3 * dh].zero_()
        part.attn_out.weight[:, 2 * dh:3 * dh].zero_()
        part.ffn_in.weight[5].zero_()
        part.ffn_in.bias[5] = 0.0
        part.ffn_out.weight[:, 5].zero_()
    inp = _inputs(model, tok, None)  # no calibration data needed
    scores = I.importance_spec(name).score(inp)
    assert [h.shape for h in scores.heads] == [torch.Size([4])] * 2 and [f.shape for f in scores.ffn] == [torch.Size([64])] * 2
    assert float(scores.heads[1][2]) == 0.0 and int(scores.heads[1].argmin()) == 2
    assert float(scores.ffn[1][5]) == 0.0 and bool((scores.ffn[1][torch.arange(64) != 5] > 0).all())
    assert _same(scores, I.magnitude_scores(inp.graph, model, p))


def test_l1_and_l2_entries_differ(tiny):
    model, tok, _ = tiny
    inp = _inputs(model, tok, None)
    assert not _same(I.importance_spec("l1").score(inp), I.importance_spec("l2").score(inp))


@pytest.mark.parametrize("name", ["taylor", "gradient"])
def test_data_entries_are_gradient_scores_and_leave_no_gradients(name, tiny):
    model, tok, batches = tiny
    inp = _inputs(model, tok, batches)
    scores = I.importance_spec(name).score(inp)
    assert [h.shape for h in scores.heads] == [torch.Size([4])] * 2 and [f.shape for f in scores.ffn] == [torch.Size([64])] * 2
    assert all(p.grad is None for p in model.parameters()) and not model.training
    assert _same(scores, I.gradient_scores(inp.graph, model, batches, "classification", tok, name, 3))
    if name == "gradient":  # head-mask gradients, L2-normalised per layer
        assert all(abs(float(h.norm()) - 1.0) < 1e-5 for h in scores.heads)


def test_taylor_and_gradient_entries_share_ffn_scores_but_not_head_scores(tiny):
    model, tok, batches = tiny
    inp = _inputs(model, tok, batches)
    taylor, grad = I.importance_spec("taylor").score(inp), I.importance_spec("gradient").score(inp)
    assert all(torch.allclose(a, b) for a, b in zip(taylor.ffn, grad.ffn))
    assert not all(torch.allclose(a, b) for a, b in zip(taylor.heads, grad.heads))
