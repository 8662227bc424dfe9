"""Each distillation loss pinned against a hand computation on small tensors."""

import math

import torch

from compress.distill import losses as L


def test_soft_label_kl_applies_t_squared_and_matches_hand_value():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 1.0]])
    T = 2.0
    ps = torch.softmax(s / T, -1)[0]
    pt = torch.softmax(t / T, -1)[0]
    hand = float((pt * (pt.log() - ps.log())).sum())
    assert math.isclose(float(L.soft_label_kl(s, t, T, t_squared=False)), hand, rel_tol=1e-5)
    assert math.isclose(float(L.soft_label_kl(s, t, T, t_squared=True)), hand * T * T, rel_tol=1e-5)


def test_soft_label_kl_is_zero_for_identical_logits():
    x = torch.randn(3, 5)
    assert float(L.soft_label_kl(x, x.clone(), 3.0)) < 1e-6


def test_masked_positions_kl_uses_only_labelled_positions():
    s = torch.randn(1, 4, 6)
    t = torch.randn(1, 4, 6)
    labels = torch.tensor([[-100, 3, -100, 5]])
    expected = L.soft_label_kl(s[0, [1, 3]], t[0, [1, 3]], 2.0)
    assert torch.allclose(L.masked_positions_kl(s, t, labels, 2.0), expected)
    # changing a non-masked position changes nothing
    s2 = s.clone()
    s2[0, 0] += 10
    assert torch.allclose(L.masked_positions_kl(s2, t, labels, 2.0), expected)


def test_hidden_cosine_excludes_padding():
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    t = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-5.0, 1.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # token 0: cos 1 -> 0 loss; token 1: cos 0 -> 1 loss; token 2 is padding
    assert math.isclose(float(L.hidden_cosine(s, t, mask)), 0.5, rel_tol=1e-6)


def test_mean_pool_ignores_padding_and_embedding_losses():
    h = torch.tensor([[[2.0, 0.0], [4.0, 2.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    pooled = L.mean_pool(h, mask)
    assert torch.allclose(pooled, torch.tensor([[3.0, 1.0]]))
    assert math.isclose(float(L.embedding_mse(pooled, torch.tensor([[1.0, 1.0]]))), 2.0, rel_tol=1e-6)
    assert math.isclose(float(L.embedding_cosine(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]))), 1.0)


def test_hidden_mse_with_projection():
    s = torch.ones(1, 2, 2)
    t = torch.full((1, 2, 3), 2.0)
    proj = torch.nn.Linear(2, 3, bias=False)
    torch.nn.init.constant_(proj.weight, 0.5)  # each output = 0.5 + 0.5 = 1.0
    assert math.isclose(float(L.hidden_mse(s, t, torch.tensor([[1, 1]]), proj)), 1.0, rel_tol=1e-6)


def test_attention_kl_zero_when_equal_positive_otherwise():
    a = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    b = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    mask = torch.ones(2, 4)
    assert float(L.attention_kl(a, a, mask)) < 1e-6
    assert float(L.attention_kl(b, a, mask)) > 0.01


def test_value_relation_rows_sum_to_one_and_mask_padding():
    v = torch.randn(1, 3, 4)
    rel = L.value_relation(v, num_heads=2, attention_mask=torch.tensor([[1, 1, 0]]))
    assert rel.shape == (1, 2, 3, 3)
    assert torch.allclose(rel.sum(-1), torch.ones(1, 2, 3))
    assert float(rel[..., 2].max()) < 1e-6


def test_hard_label_loss_classification_and_regression():
    logits = torch.tensor([[0.0, 0.0]])
    assert math.isclose(float(L.hard_label_loss(logits, torch.tensor([1]), "classification")), math.log(2), rel_tol=1e-6)
    assert math.isclose(float(L.hard_label_loss(torch.tensor([[2.0]]), torch.tensor([4.0]), "regression")), 4.0)


def test_hard_label_loss_skips_unlabelled_rows():
    logits = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    one = L.hard_label_loss(logits, torch.tensor([1, -100]), "classification")
    assert math.isclose(float(one), math.log(2), rel_tol=1e-6)  # only the first (labelled) row counts
    none = L.hard_label_loss(logits.requires_grad_(), torch.tensor([-100, -100]), "classification")
    assert float(none) == 0.0 and none.requires_grad


def test_token_kl_counts_real_tokens_only_and_matches_a_hand_computation():
    s = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [9.0, -9.0]]])
    t = torch.tensor([[[0.0, 1.0], [0.0, 2.0], [-9.0, 9.0]]])  # the last position is padding
    mask = torch.tensor([[1, 1, 0]])
    T = 2.0

    def kl(p_logits, q_logits):  # KL(q || p) by hand
        p = torch.softmax(torch.tensor(p_logits) / T, -1)
        q = torch.softmax(torch.tensor(q_logits) / T, -1)
        return float((q * (q.log() - p.log())).sum())

    want = (kl([1.0, 0.0], [0.0, 1.0]) + kl([0.0, 2.0], [0.0, 2.0])) / 2 * T**2
    assert math.isclose(float(L.token_kl(s, t, mask, T)), want, rel_tol=1e-6)
    assert math.isclose(float(L.token_kl(s, t, mask, T, t_squared=False)), want / T**2, rel_tol=1e-6)


def test_span_kl_is_the_mean_of_start_and_end_kl_with_padding_masked():
    ss, se = torch.tensor([[1.0, 0.0, 0.0, 5.0]]), torch.tensor([[0.0, 1.0, 0.0, -5.0]])
    ts, te = torch.tensor([[0.0, 1.0, 0.0, -7.0]]), torch.tensor([[0.0, 1.0, 0.0, 7.0]])
    mask = torch.tensor([[1, 1, 1, 0]])

    def kl(p_logits, q_logits):
        p, q = torch.softmax(torch.tensor(p_logits), -1), torch.softmax(torch.tensor(q_logits), -1)
        return float((q * (q.log() - p.log())).sum())

    want = (kl([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]) + kl([0.0, 1.0, 0.0], [0.0, 1.0, 0.0])) / 2
    assert math.isclose(float(L.span_kl(ss, se, ts, te, mask, 1.0)), want, rel_tol=1e-5)
    hard = L.span_loss(ss, se, torch.tensor([1]), torch.tensor([1]))
    want_hard = (-torch.log_softmax(ss, -1)[0, 1] - torch.log_softmax(se, -1)[0, 1]) / 2
    assert math.isclose(float(hard), float(want_hard), rel_tol=1e-6)
