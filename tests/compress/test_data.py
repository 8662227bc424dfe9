"""Data loading: every file format, column checks, label parsing, splits, the built-in corpus."""

import json

import pytest

from compress.data.rows import builtin_pydoc_sentences, distillation_texts, load_splits, load_text_data
from compress.config import DataConfig
from compress.core.errors import DataError


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
    (tmp_path / "bad.tsv").write_text("s\ty\nhello\t1.5\nthere\tx\n")
    with pytest.raises(DataError, match=r"bad.tsv' row 2: label 'x' is not a number"):
        load_text_data(str(tmp_path / "bad.tsv"), "s", label_column="y", task="regression")
    with pytest.raises(DataError, match="column 'nope' not found; columns are: s1, s2, y"):
        load_text_data(str(files / "d.tsv"), "nope")
    (tmp_path / "x.xlsx").write_text("a")
    with pytest.raises(DataError, match="unsupported extension '.xlsx'"):
        load_text_data(str(tmp_path / "x.xlsx"), "s")
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="x.parquet' could not be read as parquet"):
        load_text_data(str(tmp_path / "x.parquet"), "s")


def test_parquet_and_json_array(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"s": ["one", "two", "three"], "y": [0, 1, 1]}), tmp_path / "d.parquet")
    d = load_text_data(str(tmp_path / "d.parquet"), "s", label_column="y", task="classification")
    assert d.texts == ["one", "two", "three"] and d.labels == [0, 1, 1] and d.label_names is None
    (tmp_path / "d.json").write_text(json.dumps([{"s": "a", "y": 2.5}, {"s": "b", "y": 0.5}]))
    assert load_text_data(str(tmp_path / "d.json"), "s", label_column="y", task="regression").labels == [2.5, 0.5]


def test_headerless_tsv_is_addressed_by_position(tmp_path):
    (tmp_path / "n.tsv").write_text('it\'s "great"\t1\nawful\t0\nfine\t1\n')
    d = load_text_data(str(tmp_path / "n.tsv"), "0", label_column="1", task="classification", header=False)
    assert d.texts == ['it\'s "great"', "awful", "fine"] and d.labels == [1, 0, 1]
    with pytest.raises(DataError, match="column 'sentence' not found; columns are: 0, 1.*data.header is false"):
        load_text_data(str(tmp_path / "n.tsv"), "sentence", header=False)
    cfg = DataConfig(train=str(tmp_path / "n.tsv"), header=False, text_column=0, label_column=1)
    assert cfg.text_column == "0" and cfg.label_column == "1"


def test_string_labels_map_through_sorted_train_names(tmp_path):
    (tmp_path / "train.tsv").write_text("s\ty\na\tpositive\nb\tnegative\nc\tpositive\nd\tneutral\n")
    (tmp_path / "dev.tsv").write_text("s\ty\ne\tneutral\nf\tpositive\n")
    (tmp_path / "bad.tsv").write_text("s\ty\ne\tneutral\nf\tSci/Tech\n")
    cfg = DataConfig(train=str(tmp_path / "train.tsv"), eval=str(tmp_path / "dev.tsv"), label_column="y", text_column="s")
    s = load_splits(cfg, "classification", seed=0)
    assert s.train.label_names == ["negative", "neutral", "positive"] == s.eval.label_names == s.label_names
    assert s.train.labels == [2, 0, 2, 1] and s.eval.labels == [1, 2]
    given = load_splits(cfg, "classification", seed=0, label2id={"positive": 0, "negative": 1, "neutral": 2})
    assert given.train.labels == [0, 1, 0, 2] and given.eval.label_names == ["positive", "negative", "neutral"]
    with pytest.raises(DataError, match=r"bad.tsv' row 2: label 'Sci/Tech' is not a known class name \(known: negative"):
        load_splits(cfg.model_copy(update={"eval": str(tmp_path / "bad.tsv")}), "classification", seed=0)
    with pytest.raises(DataError, match=r"train.tsv' row 4: label 'neutral' is not a known class name \(known: positive, negative\)"):
        load_splits(cfg, "classification", seed=0, label2id={"positive": 0, "negative": 1})


def test_digit_string_labels_are_integers(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"s": "a", "y": "0"}\n{"s": "b", "y": "1"}\n')
    d = load_text_data(str(tmp_path / "d.jsonl"), "s", label_column="y", task="classification")
    assert d.labels == [0, 1] and d.label_names is None


def test_data_that_cannot_train_is_refused(tmp_path):
    (tmp_path / "one.tsv").write_text("s\ty\n" + "".join(f"row {i}\tpositive\n" for i in range(20)))
    with pytest.raises(DataError, match="one.tsv' has a single class \\('positive'\\)"):
        load_splits(DataConfig(train=str(tmp_path / "one.tsv"), text_column="s", label_column="y"), "classification", 0)
    (tmp_path / "flat.tsv").write_text("s\ty\n" + "".join(f"row {i}\t3.0\n" for i in range(20)))
    with pytest.raises(DataError, match="flat.tsv' has the same score \\(3.0\\) on every row"):
        load_splits(DataConfig(train=str(tmp_path / "flat.tsv"), text_column="s", label_column="y"), "regression", 0)


def test_non_utf8_file_names_line_and_byte(tmp_path):
    (tmp_path / "l1.tsv").write_bytes("s\ty\nok\t1\ncaf\xe9 cr\xe8me\t0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"l1.tsv' is not UTF-8 text \(line 3, byte offset 12\)"):
        load_text_data(str(tmp_path / "l1.tsv"), "s")


def test_reading_needs_no_network(tmp_path, monkeypatch):
    import socket

    def refuse(*a, **k):
        raise AssertionError("network call attempted while reading a local file")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    (tmp_path / "d.csv").write_text("sentence,label\nhello,1\nworld,0\n")
    assert load_text_data(str(tmp_path / "d.csv"), "sentence", label_column="label", task="classification").labels == [1, 0]


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
    from compress.data.rows import unlabeled_corpora

    texts = distillation_texts(train, unlabeled_corpora(cfg, files / ".cache"))
    assert len(texts) == 6 and texts.count("b one") == 1
