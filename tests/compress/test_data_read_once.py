"""A run reads each source file once: its data split stores every split's rows under ``runs/<name>/data/rows/``,
and every stage and search branch reads those rows (``inputs.data``) instead of the file."""

from __future__ import annotations

import json
from collections import Counter

import compress.data.files as datafiles


def _count_reads(monkeypatch) -> Counter:
    """Counts every read of a source file or hub dataset per source (the one function through which every
    reader, sentence rows, tagged sentences and SQuAD questions, reads one)."""
    reads: Counter = Counter()
    real = datafiles._fresh_read

    def counting(source, read):
        reads[source] += 1
        return real(source, read)

    monkeypatch.setattr(datafiles, "_fresh_read", counting)
    return reads


def _rows(path, n: int, offset: int) -> None:
    lines = ["sentence\tlabel"] + [f"{'a fine warm film' if i % 2 else 'a dull cold film'} number {i + offset}\t"
                                   f"{'positive' if i % 2 else 'negative'}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def test_a_run_with_finetune_distill_search_and_bench_reads_each_file_once(tmp_path, tiny_model_dir, monkeypatch):
    from compress.config import load_config
    from compress.run.pipeline import run_pipeline

    train, dev, test = tmp_path / "train.tsv", tmp_path / "dev.tsv", tmp_path / "test.tsv"
    _rows(train, 48, 0), _rows(dev, 16, 100), _rows(test, 16, 200)
    cfg = load_config(None, base={
        "name": "once", "output_dir": str(tmp_path / "runs"), "task": "classification",
        "stages": ["finetune", "distill", "search", "bench"],
        "teacher": {"model": str(tiny_model_dir("bert", "mlm")), "max_length": 32},
        "data": {"train": str(train), "eval": str(dev), "test": str(test), "text_column": "sentence",
                 "label_column": "label"},
        "finetune": {"epochs": 1, "batch_size": 16}, "student": {"num_layers": 1},
        "distill": {"max_steps": 2, "batch_size": 16}, "prune": {"round_to": 4},
        "search": {"prune_ratios": [0.0, 0.5], "quantize": ["dynamic"], "max_eval_samples": 16,
                   "targets": {"retention_floor": 0.01}},
        "quantize": {"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}},
        "bench": {"warmup": 1, "min_runs": 3, "min_seconds": 0.0, "threads": 1, "max_eval_samples": 16}})
    reads = _count_reads(monkeypatch)
    run_pipeline(cfg)
    search = json.loads((cfg.run_dir / "03-search" / "candidates.json").read_text())
    assert len({c["name"].split("/")[0] for c in search["candidates"]}) == 2  # two branches ran
    assert reads == Counter({str(train): 1, str(dev): 1, str(test): 1})
    assert sorted(p.name for p in (cfg.run_dir / "data" / "rows").iterdir()) == ["eval", "test", "train"]
    assert not (cfg.run_dir / "data" / "sources").exists()  # the rows are the run's copy; no file copies kept

    # resuming reads each file once more (its digest decides what is redone), and redoes nothing when unchanged
    reads.clear()
    out = run_pipeline(cfg)
    assert reads == Counter({str(train): 1, str(dev): 1, str(test): 1})
    assert {o.status for o in out} == {"skipped"}

    # an edited file is read at the next run's split: the stages that read data run again on its new rows
    reads.clear()
    _rows(test, 12, 300)
    out = {o.name: o.status for o in run_pipeline(cfg, force=set())}
    assert reads == Counter({str(train): 1, str(dev): 1, str(test): 1})
    assert out["bench"] == "ran"


def test_tagged_sentences_and_squad_questions_come_back_from_the_run_copy_unchanged(tmp_path, monkeypatch):
    """NER and QA readers go through the same copy: stored at the first read inside a run, then served as read."""
    from compress.tasks.ner import read_tagged
    from compress.tasks.qa import read_qa
    from tests.compress.test_ner_pipeline import write_conll, write_squad
    from tests.squad_tiny import EXAMPLES

    conll = write_conll(tmp_path / "train.txt", 12, 0)
    squad = write_squad(tmp_path / "squad.json", EXAMPLES)
    reads = _count_reads(monkeypatch)
    copies = tmp_path / "run" / "data" / "sources"
    with datafiles.reading_sources(copies):
        tagged, qa = read_tagged(str(conll)), read_qa(str(squad), 64, 20)
    conll.write_text("edited\tO\n")  # the copy, not the file, is what the run reads from now on
    with datafiles.reading_sources(copies):
        tagged2, qa2 = read_tagged(str(conll)), read_qa(str(squad), 64, 20)
    assert reads == Counter({str(conll): 1, str(squad): 1})
    assert (tagged2.tokens, tagged2.tags, tagged2.source) == (tagged.tokens, tagged.tags, tagged.source)
    assert qa2.examples == qa.examples and (qa2.doc_stride, qa2.max_answer_length) == (64, 20)
    assert any(not e.answers for e in qa2.examples) and any(e.answers for e in qa2.examples)
    assert read_tagged(str(conll)).tokens == [["edited"]]  # outside a run: the file itself


def test_a_label_free_run_converts_its_streamed_train_file_once(tiny_model_dir, shared_data, tmp_path,
                                                                     monkeypatch):
    """embedding distill -> 2-branch search -> bench: the split converts the train file to memory-mapped Arrow once
    (datasets' cache, not a row read) and stores its rows in the artifact; no stage or branch reads a file again."""
    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline
    from tests.compress.test_search import _tiny_search_run

    cfg = RunConfig.model_validate(_tiny_search_run(
        tiny_model_dir, shared_data, tmp_path, name="stream", stages=["distill", "search", "bench"],
        search={"depths": [1], "prune_ratios": [0.0, 0.5], "quantize": ["dynamic"], "max_eval_samples": 16,
                "targets": {"retention_floor": 0.01}},
        quantize={"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}},
        bench={"warmup": 1, "min_runs": 3, "min_seconds": 0.0, "threads": 1, "max_eval_samples": 16}))
    reads = _count_reads(monkeypatch)
    run_pipeline(cfg)
    assert reads == Counter({cfg.data.test: 1})
