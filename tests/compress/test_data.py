"""Data loading: every file format, column checks, label parsing, splits, the built-in corpus."""

import json

import pytest

from compress.data import builtin_pydoc_sentences, distillation_texts, load_splits, load_text_data
from compress.config import DataConfig
from compress.errors import DataError


@pytest.fixture
def files(tmp_path):
    rows = [("a \"quoted\" line", "b one", "1"), ("second line", "b two", "0"), ("third", "b three", "1")]
    (tmp_path / "d.tsv").write_text("s1\ts2\ty\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows))
    (tmp_path / "d.csv").write_text("s1,s2,y\n" + "".join(f'"{a.replace(chr(34), 2 * chr(34))}",{b},{c}\n' for a, b, c in rows))
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"s1": a, "s2": b, "y": int(c)}) + "\n" for a, b, c in rows))
    (tmp_path / "d.txt").write_text("".join(a + "\n" for a, _, _ in rows) + "\n")
    return tmp_path


@pytest.mark.parametrize("ext", ["tsv", "csv", "jsonl"])
def test_tabular_formats_give_the_same_rows(files, ext):
    d = load_text_data(str(files / f"d.{ext}"), "s1", "s2", "y", task="classification")
    assert d.texts == ['a "quoted" line', "second line", "third"]
    assert d.pairs == ["b one", "b two", "b three"]
    assert d.labels == [1, 0, 1]


def test_plain_text_one_sentence_per_line(files):
    d = load_text_data(str(files / "d.txt"), "text")
    assert len(d) == 3 and d.labels is None


def test_regression_and_embedding_labels_are_floats(files):
    assert load_text_data(str(files / "d.tsv"), "s1", label_column="y", task="regression").labels == [1.0, 0.0, 1.0]
    assert load_text_data(str(files / "d.tsv"), "s1", label_column="y", task="embedding").labels == [1.0, 0.0, 1.0]


def test_bad_label_and_missing_column_and_extension(files, tmp_path):
    (tmp_path / "bad.tsv").write_text("s\ty\nhello\tpositive\n")
    with pytest.raises(DataError, match="row 1: label 'positive' is not an integer"):
        load_text_data(str(tmp_path / "bad.tsv"), "s", label_column="y", task="classification")
    with pytest.raises(DataError, match="column 'nope' not found; columns are: s1, s2, y"):
        load_text_data(str(files / "d.tsv"), "nope")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(DataError, match="unsupported extension"):
        load_text_data(str(tmp_path / "x.parquet"), "s")


def test_splits_hold_out_eval_and_cap_sizes():
    cfg = DataConfig(train="builtin:pydoc", eval_fraction=0.2, max_train_samples=100)
    s = load_splits(cfg, "embedding", seed=1)
    assert len(s.train) == 100
    n = len(builtin_pydoc_sentences())
    assert len(s.eval) == int(n * 0.2)
    assert not set(s.eval.texts) & set(s.train.texts)
    assert load_splits(cfg, "embedding", seed=1).eval.texts == s.eval.texts  # seeded


def test_builtin_corpus_is_prose():
    sents = builtin_pydoc_sentences()
    assert len(sents) > 1000
    assert all(5 <= len(s.split()) <= 40 and s[0].isupper() for s in sents)


def test_distillation_texts_adds_unlabeled_sources_without_duplicates(files):
    cfg = DataConfig(train="x", unlabeled=[{"source": str(files / "d.tsv"), "text_column": "s2", "limit": 2}])
    train = load_text_data(str(files / "d.tsv"), "s1", "s2")
    texts = distillation_texts(cfg, train)
    assert len(texts) == 6 and texts.count("b one") == 1
