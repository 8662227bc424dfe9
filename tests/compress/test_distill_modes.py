"""On a tiny model every distillation mode trains: the total loss falls over a few steps."""

import pytest

from compress.data.rows import TextData, builtin_pydoc_sentences
from compress.distill.config import DistillConfig, LossWeights
from compress.distill.engine import distill_model
from compress.distill.student import spread_layers, student_from_teacher
from compress.model.loading import load_model, load_tokenizer

MODES = {
    "embedding": ("embedding", LossWeights(cos=1.0, embed_mse=1.0, hidden_mse=0.5, value_kl=0.5)),
    "mlm": ("mlm", LossWeights(kl=1.0, mlm=0.5, cos=1.0, attn_kl=0.1)),
    "classification": ("classification", LossWeights(kl=1.0, hard=0.5, embed_cos=1.0)),
    "regression": ("regression", LossWeights(hard=1.0, cos=1.0)),
}


def _data(task: str) -> TextData:
    texts = builtin_pydoc_sentences()[:48]
    labels = None
    if task == "classification":
        labels = [int("return" in t) for t in texts]
    elif task == "regression":
        labels = [float(len(t.split()) % 5) for t in texts]
    return TextData(texts, None, labels)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_loss_falls(mode, tiny_model_dir, tmp_path):
    task, weights = MODES[mode]
    head = {"embedding": "mlm", "mlm": "mlm"}.get(task, task)
    path = tiny_model_dir("bert", head)
    teacher = load_model(str(path), task)
    tok = load_tokenizer(str(path))
    student, picked = student_from_teacher(teacher, num_layers=1)
    cfg = DistillConfig(max_steps=40, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0, logging_steps=4, loss=weights)
    out = distill_model(teacher, student, tok, _data(task), None, task, cfg, 32, tmp_path, seed=0, picked_layers=picked)
    losses = [h["loss"] for h in out.history]
    assert len(losses) >= 4
    assert losses[-1] < losses[0] * 0.9, losses
    # every active term was logged separately
    active = {k for k, v in weights.model_dump().items() if v > 0}
    assert {f"loss_{k}" for k in active} <= set(out.history[0])
    assert out.metrics["steps"] == 40


def test_spread_layers_matches_distilbert_choice():
    assert spread_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert spread_layers(6, 3) == [0, 3, 5]
    assert spread_layers(6, 1) == [5]


def test_student_from_teacher_copies_the_picked_layers(tiny_model_dir):
    import torch

    teacher = load_model(str(tiny_model_dir("bert", "mlm")), "embedding")
    student, picked = student_from_teacher(teacher, layers=[1])
    assert picked == [1] and student.config.num_hidden_layers == 1
    assert torch.equal(student.encoder.layer[0].output.dense.weight, teacher.encoder.layer[1].output.dense.weight)
    assert student.encoder.layer[0].output.dense.weight.data_ptr() != teacher.encoder.layer[1].output.dense.weight.data_ptr()


def test_mismatched_vocabulary_is_refused(tiny_model_dir, tmp_path):
    from compress.distill.student import check_same_vocab
    from compress.core.errors import ModelLoadError

    tok = load_tokenizer(str(tiny_model_dir("bert", "mlm")))
    other = tmp_path / "other"
    other.mkdir()
    (other / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    from transformers import BertTokenizerFast

    small = BertTokenizerFast(vocab_file=str(other / "vocab.txt"))
    with pytest.raises(ModelLoadError, match="different vocabulary"):
        check_same_vocab(tok, small, "other")


def test_distilbert_student_teacher_gets_token_type_ids(tiny_model_dir, tmp_path):
    """A BERT teacher keeps its token_type_ids even though the batch goes to a student without them."""
    from compress.distill.engine import DistillCollator, TokenizedExamples

    tok = load_tokenizer(str(tiny_model_dir("bert", "mlm")))
    ds = TokenizedExamples(tok, ["a b", "c"], ["d", "e f"], None, 16)
    batch = DistillCollator(tok, None)([ds[0], ds[1]])
    assert "token_type_ids" in batch and int(batch["token_type_ids"].sum()) > 0


def test_classification_distillation_uses_unlabelled_text(tiny_model_dir, tmp_path):
    """data.unlabeled rows join classification distillation with label -100: soft labels only, loss falls."""
    from types import SimpleNamespace

    from compress.data.rows import UNLABELED, unlabeled_corpora, with_unlabeled

    labelled = _data("classification").head(16)
    src = tmp_path / "extra.txt"
    extra = builtin_pydoc_sentences()[16:64]
    src.write_text("\n".join(extra[:8] + labelled.texts[:4] + extra[8:]) + "\n")
    data_cfg = SimpleNamespace(unlabeled=[SimpleNamespace(source=str(src), text_column="text", limit=None)],
                               text_pair_column=None)
    train = with_unlabeled(data_cfg, labelled, unlabeled_corpora(data_cfg, tmp_path / "cache"))
    assert train.texts[:16] == labelled.texts and len(train) == 16 + len(set(extra) - set(labelled.texts))
    assert train.labels[:16] == labelled.labels and set(train.labels[16:]) == {UNLABELED}
    path = tiny_model_dir("bert", "classification")
    teacher = load_model(str(path), "classification")
    student, picked = student_from_teacher(teacher, num_layers=1)
    cfg = DistillConfig(max_steps=30, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0, logging_steps=3,
                        loss=LossWeights(kl=1.0, hard=0.5))
    out = distill_model(teacher, student, load_tokenizer(str(path)), train, None, "classification", cfg, 32,
                        tmp_path / "o", seed=0, picked_layers=picked)
    losses = [h["loss"] for h in out.history]
    assert all(l == l for l in losses) and losses[-1] < losses[0] * 0.9, losses  # no NaN from all-unlabelled batches
    assert out.metrics["train_examples"] == len(train)


def test_unlabelled_rows_refused_for_sentence_pairs():
    from types import SimpleNamespace

    from compress.data.rows import with_unlabeled
    from compress.core.errors import DataError

    pairs = TextData(["a"], ["b"], [1])
    data_cfg = SimpleNamespace(unlabeled=[SimpleNamespace(source="x", text_column="t", limit=None)],
                               text_pair_column="sentence2")
    import datasets

    with pytest.raises(DataError, match="sentence pairs"):
        with_unlabeled(data_cfg, pairs, [datasets.Dataset.from_dict({"text": ["c"]})])
