"""The run's data artifact: the data is split once into stored rows, every stage reads those rows, a file edited
mid-run does not reach the run, and an edit redoes the data-reading stages on the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.config import load_config
from compress.data.rows import eval_split_ids, load_splits
from compress.data.artifact import read_plan, write_plan


def _stsb_like(path: Path, n: int = 60, tweak: str = "") -> Path:
    rows = ["sentence1\tsentence2\tscore"]
    for i in range(n):
        rows.append(f"A person number {i} walks the dog{tweak if i == 3 else ''}.\tSomeone walks dog {i % 7}.\t{i % 5}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _data(path: Path) -> dict:
    return {"train": str(path), "text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "score"}


def test_artifact_holds_the_rows_eval_ids_and_digests(tmp_path):
    cfg = load_config(None, base={"teacher": {"model": "x"}, "data": _data(_stsb_like(tmp_path / "d.tsv"))})
    plan = write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache")
    meta = json.loads((tmp_path / "run" / "data" / "splits.json").read_text())
    assert meta["splits"]["train"]["source_rows"] == 60 and meta["splits"]["eval"]["rows"] == 6
    assert plan.eval_ids().tolist() == eval_split_ids(60, 0.1, 42)[0].tolist()
    stored, loaded = plan.splits(), load_splits(cfg.data, "embedding", 42)  # the stored rows are the loader's
    assert len(stored.eval) == 6 and len(stored.train) == 54
    for split in ("train", "eval", "test"):  # embedding trains without labels: its train split stores none
        a, b = getattr(stored, split), getattr(loaded, split)
        assert (a.texts, a.pairs) == (list(b.texts), list(b.pairs))
        assert a.labels == (None if split == "train" else list(b.labels))
    streamed = plan.splits(streamed=True)  # label-free train: the memory-mapped corpus, same rows
    assert streamed.train["text"] == stored.train.texts and streamed.eval.texts == stored.eval.texts
    assert write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache").digest == plan.digest


def test_class_names_become_the_heads_ids_and_tag_and_window_settings_are_recorded(tmp_path):
    from tests.squad_tiny import CONTEXTS, EXAMPLES

    src = tmp_path / "c.tsv"
    src.write_text("text\tlabel\n" + "".join(f"row {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(20)))
    cfg = load_config(None, base={"teacher": {"model": "x"}, "data": {"train": str(src), "text_column": "text", "label_column": "label"}})
    plan = write_plan(cfg.data, "classification", 1, tmp_path / "cls", tmp_path / "cache",
                      {"label2id": {"pos": 0, "neg": 1}})  # the head's ids, not the sorted names'
    rows = plan.splits().train
    assert rows.label_names == ["pos", "neg"] and all(rows.labels[i] == (0 if t.endswith(("1", "3", "5", "7", "9")) else 1)
                                                     for i, t in enumerate(rows.texts))
    conll = tmp_path / "n.conll"
    conll.write_text("".join(f"John B-PER\nlives O\nin O\nParis{i} B-LOC\n\n" for i in range(12)))
    ner = load_config(None, base={"teacher": {"model": "x"}, "task": "token-classification", "data": {"train": str(conll)}})
    plan = write_plan(ner.data, "token-classification", 1, tmp_path / "ner", tmp_path / "cache")
    assert plan.rows_attrs()["tag_names"] == ["O", "B-LOC", "B-PER"] and plan.splits().train.tokens[0][0] == "John"
    squad = tmp_path / "q.json"
    paragraphs = [{"context": c, "qas": [{"id": e.id, "question": e.question, "answers": e.answers,
                                          "is_impossible": not e.answers} for e in EXAMPLES if e.context == c]}
                  for c in CONTEXTS]
    squad.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    qa = load_config(None, base={"teacher": {"model": "x"}, "task": "question-answering",
                                 "data": {"train": str(squad), "doc_stride": 64}})
    plan = write_plan(qa.data, "question-answering", 1, tmp_path / "qa", tmp_path / "cache")
    got = plan.splits()
    assert plan.rows_attrs()["doc_stride"] == 64 and got.train.doc_stride == 64
    assert [e.answers for e in got.eval.examples] == [e.answers for e in load_splits(qa.data, "question-answering", 1).eval.examples]


def test_a_file_edited_mid_run_does_not_reach_the_run(tmp_path):
    src = _stsb_like(tmp_path / "d.tsv")
    cfg = load_config(None, base={"teacher": {"model": "x"}, "data": _data(src)})
    plan = write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache")
    before = plan.splits().train.texts
    _stsb_like(src, n=70, tweak=" (edited)")
    assert read_plan(tmp_path / "run").splits().train.texts == before  # later stages read the stored rows


def test_every_stage_reads_the_one_split_and_an_edit_redoes_them(tmp_path, monkeypatch):
    """distill -> export -> quantize -> bench: the seeded shuffle runs once (the artifact), each data-reading
    stage loads through the artifact, and editing the data file redoes those stages on the next run."""
    import compress.data.rows as rows_mod
    import compress.data.split as data_mod
    import compress.data.artifact as splits_mod
    from compress.run.pipeline import run_pipeline
    from tests.compress.test_package import QUICK_BENCH, make_st_teacher

    src = _stsb_like(tmp_path / "d.tsv", n=80)
    teacher = make_st_teacher(tmp_path / "teacher", pooling="mean")
    base = {"name": "s", "output_dir": str(tmp_path / "runs"), "stages": ["distill", "export", "quantize", "bench"],
            "teacher": {"model": str(teacher)}, "data": _data(src), "student": {"num_layers": 1},
            "distill": {"max_steps": 2, "batch_size": 8}, "quantize": {"guard": {"eval_samples": 16}},
            "bench": QUICK_BENCH}
    shuffles = []
    real_split = data_mod.eval_split_ids
    for caller in (data_mod, rows_mod):  # carve_splits (sentence, NER, QA rows) and load_distill_splits
        monkeypatch.setattr(caller, "eval_split_ids", lambda *a: shuffles.append(a) or real_split(*a))
    read_rows = []
    real_rows = splits_mod.RunData.splits
    monkeypatch.setattr(splits_mod.RunData, "splits", lambda self, **kw: read_rows.append(kw) or real_rows(self, **kw))
    outcomes = run_pipeline(load_config(None, base=base))
    assert [o.status for o in outcomes if o.name != "package"] == ["ran"] * 4
    assert len(shuffles) == 1  # the split was made once, by the artifact; no stage splits again
    assert len(read_rows) >= 3 and {"streamed": True} in read_rows  # distill, quantize and bench read its rows
    assert read_plan(tmp_path / "runs" / "s") is not None

    again = run_pipeline(load_config(None, base=base))
    assert {o.name: o.status for o in again}["distill"] == "skipped"
    _stsb_like(src, n=80, tweak=" (edited)")
    edited = {o.name: o.status for o in run_pipeline(load_config(None, base=base))}
    assert edited["distill"] == "ran" and edited["quantize"] == "ran" and edited["bench"] == "ran"


def test_unlabeled_corpora_are_stored_with_the_split_and_leave_its_digest_alone(tmp_path):
    """data.unlabeled is read once, by the split, into the artifact (cut to its limit); editing the file later does
    not reach the run, and the corpora do not join the digest (finetune, which never reads them, is not redone)."""
    extra = tmp_path / "extra.txt"
    extra.write_text("".join(f"unlabelled sentence {i}\n" for i in range(9)))
    data = _data(_stsb_like(tmp_path / "d.tsv"))
    plain = load_config(None, base={"teacher": {"model": "x"}, "data": data})
    more = load_config(None, base={"teacher": {"model": "x"}, "data": {**data, "unlabeled": [
        {"source": str(extra), "limit": 5}]}})
    without = write_plan(plain.data, "embedding", 42, tmp_path / "a", tmp_path / "cache")
    plan = write_plan(more.data, "embedding", 42, tmp_path / "b", tmp_path / "cache")
    assert [c["text"] for c in plan.unlabeled()] == [[f"unlabelled sentence {i}" for i in range(5)]]
    assert without.unlabeled() == [] and plan.digest == without.digest
    extra.write_text("edited\n" * 9)
    assert read_plan(tmp_path / "b").unlabeled()[0]["text"][0] == "unlabelled sentence 0"


def test_a_later_rank_holds_the_same_split_in_memory(tmp_path):
    """A rank other than the first (torchrun, before any process group exists) makes the split itself, writes
    nothing, and gets the rows, ids and digest the first rank writes."""
    from compress.data.artifact import split_in_memory

    cfg = load_config(None, base={"teacher": {"model": "x"}, "data": _data(_stsb_like(tmp_path / "d.tsv"))})
    held = split_in_memory(cfg.data, "embedding", 42, tmp_path / "rank1", tmp_path / "cache")
    assert not (tmp_path / "rank1").exists()
    plan = write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache")
    assert held.digest == plan.digest and held.eval_ids().tolist() == plan.eval_ids().tolist()
    for split in ("train", "eval", "test"):
        assert getattr(held.splits(), split).texts == getattr(plan.splits(), split).texts
    assert held.splits(streamed=True).train["text"] == plan.splits(streamed=True).train["text"]
