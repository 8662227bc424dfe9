"""Quality metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import metrics as M


def test_accuracy_and_binary_f1_by_hand():
    gold = [1, 0, 1, 1, 0, 0]
    pred = [1, 1, 0, 1, 0, 0]
    assert M.accuracy(pred, gold) == pytest.approx(4 / 6)
    # class 1: tp=2, fp=1, fn=1 -> F1 = 4 / (4 + 1 + 1)
    assert M.f1(pred, gold) == pytest.approx(2 / 3)


def test_macro_f1_three_classes():
    gold = [0, 1, 2, 2]
    pred = [0, 2, 2, 1]
    # class0: 1.0; class1: tp0 -> 0; class2: tp=1 fp=1 fn=1 -> 0.5
    assert M.f1(pred, gold) == pytest.approx((1.0 + 0.0 + 0.5) / 3)


def test_spearman_pearson_by_hand():
    x = [1.0, 2.0, 3.0, 4.0]
    y = [1.0, 3.0, 2.0, 4.0]
    # ranks differ by d = (0, 1, -1, 0): rho = 1 - 6*2 / (4*15) = 0.8
    assert M.spearman(x, y) == pytest.approx(0.8)
    assert M.pearson(x, y) == pytest.approx(0.8)
    assert M.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1])
    assert M.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_sts_scores_use_cosine_of_pairs():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cosines 1, 0.7071, 0
    out = M.sts_scores(a, b, [5.0, 2.0, 3.0])
    assert M.cosine_rows(a, b) == pytest.approx([1.0, 2 ** -0.5, 0.0])
    assert out["spearman"] == pytest.approx(0.5)  # ranks (3,2,1) vs (3,1,2)
    assert out["pearson"] == pytest.approx(np.corrcoef([1.0, 2 ** -0.5, 0.0], [5.0, 2.0, 3.0])[0, 1])


def test_fidelity_top1_and_retention():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(20, 8))
    same = M.fidelity(t * 3.0, t)  # scaling keeps cosines
    assert same["fidelity_cosine"] == pytest.approx(1.0)
    assert same["fidelity_spearman"] == pytest.approx(1.0)
    noisy = M.fidelity(t + rng.normal(scale=1.0, size=t.shape), t)
    assert 0.3 < noisy["fidelity_cosine"] < 0.95
    assert noisy["fidelity_spearman"] < 1.0
    assert M.top1_agreement(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]),
                            np.array([[0.2, 0.8], [0.1, 0.9], [0.4, 0.6]])) == pytest.approx(2 / 3)
    assert M.retention(0.78, 0.80) == pytest.approx(0.975)
    assert M.retention(0.5, 0.0) is None and M.retention(None, 0.8) is None


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-PER"], ["B-LOC", "O"]]
    # gold entities PER(0-1), LOC(3); predicted PER(0-1) right, PER(3) and LOC(row 2) wrong
    # P = 1/3, R = 1/2, F1 = 2PR / (P + R) = 0.4
    s = M.entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(0.4)


def test_entity_scores_default_mode_reads_a_leading_i_tag_as_an_entity():
    # conlleval's (seqeval's default) reading: I-PER I-PER is one PER entity, equal to B-PER I-PER
    assert M.entity_scores([["I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])["f1"] == pytest.approx(1.0)
    assert M.entity_scores([["O", "O"]], [["O", "O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_entity_scores_needs_one_tag_per_word():
    with pytest.raises(ValueError, match="one predicted tag per gold tag"):
        M.entity_scores([["B-PER", "O"]], [["B-PER"]])


def test_word_agreement_skips_truncated_words():
    variant = [np.array([1, 2, 0]), np.array([3, -1])]
    reference = [np.array([1, 0, 0]), np.array([3, 4])]
    # kept words: (1,1) (2,0) (0,0) (3,3); the truncated one is skipped -> 3 / 4
    assert M.word_agreement(variant, reference) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="same words"):
        M.word_agreement([np.array([1])], [np.array([1, 2])])


def test_answer_agreement_compares_answer_texts_exactly():
    from benchmarks.metrics import answer_agreement

    assert answer_agreement(["a list", "", "the class"], ["a list", "", "class"]) == pytest.approx(2 / 3)
    assert answer_agreement([""], ["x"]) == 0.0
    with pytest.raises(ValueError):
        answer_agreement([], [])


def test_best_null_threshold_is_the_official_search_over_null_margins():
    """Answer below the threshold, '' above it: margins -1 (right), 0.5 (wrong span), 2 (unanswerable) -> answer
    only the first: F1 (100 + 0 + 100) / 3 at threshold -1 (all null scores 1/3; all answered 1/3)."""
    from types import SimpleNamespace as Q

    examples = [Q(id="a", answers=[{"text": "Paris"}]), Q(id="b", answers=[{"text": "Rome"}]), Q(id="c", answers=[])]
    out = M.best_null_threshold(examples, {"a": "Paris", "b": "Milan", "c": "x"}, {"a": -1.0, "b": 0.5, "c": 2.0})
    assert out == pytest.approx({"threshold": -1.0, "f1": 200 / 3})
    applied = {"a": "Paris", "b": "", "c": ""}
    assert M.squad_scores(examples, applied)["f1"] == pytest.approx(out["f1"])
