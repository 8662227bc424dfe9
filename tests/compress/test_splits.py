"""The run's data artifact: the data is split once, every stage reads its rows through it, an edited file is
refused mid-run and redoes the data-reading stages on the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.config import load_config
from compress.data.rows import eval_split_ids, load_splits
from compress.core.errors import DataError
from compress.data.artifact import read_plan, write_plan


def _stsb_like(path: Path, n: int = 60, tweak: str = "") -> Path:
    rows = ["sentence1\tsentence2\tscore"]
    for i in range(n):
        rows.append(f"A person number {i} walks the dog{tweak if i == 3 else ''}.\tSomeone walks dog {i % 7}.\t{i % 5}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _data(path: Path) -> dict:
    return {"train": str(path), "text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "score"}


def test_artifact_holds_eval_ids_and_digests(tmp_path):
    cfg = load_config(None, base={"teacher": {"model": "x"}, "data": _data(_stsb_like(tmp_path / "d.tsv"))})
    plan = write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache")
    meta = json.loads((tmp_path / "run" / "data" / "splits.json").read_text())
    assert meta["splits"]["train"]["source_rows"] == 60 and meta["splits"]["eval"]["rows"] == 6
    assert plan.eval_ids().tolist() == eval_split_ids(60, 0.1, 42)[0].tolist()
    splits = load_splits(cfg.data, "embedding", 42, plan=plan)  # the in-memory loader agrees with the artifact
    assert len(splits.eval) == 6 and len(splits.train) == 54
    assert write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache").digest == plan.digest


def test_a_file_edited_mid_run_is_refused(tmp_path):
    src = _stsb_like(tmp_path / "d.tsv")
    cfg = load_config(None, base={"teacher": {"model": "x"}, "data": _data(src)})
    plan = write_plan(cfg.data, "embedding", 42, tmp_path / "run", tmp_path / "cache")
    _stsb_like(src, tweak=" (edited)")
    with pytest.raises(DataError, match="not what this run split at its start"):
        load_splits(cfg.data, "embedding", 42, plan=plan)
    _stsb_like(src, n=70)
    with pytest.raises(DataError, match="has 70 rows, not the 60"):
        load_splits(cfg.data, "embedding", 42, plan=plan)


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
    shuffles, planned = [], []
    real_split, real_planned = data_mod.eval_split_ids, data_mod.planned_eval_ids
    monkeypatch.setattr(data_mod, "eval_split_ids", lambda *a: shuffles.append(a) or real_split(*a))

    def spy(plan, *a):
        planned.append(plan is not None)
        return real_planned(plan, *a)

    for caller in (data_mod, rows_mod):  # carve_splits (sentence, NER, QA rows) and load_distill_splits
        monkeypatch.setattr(caller, "planned_eval_ids", spy)
    read_rows = []
    real_rows = splits_mod.RunData.splits
    monkeypatch.setattr(splits_mod.RunData, "splits", lambda self, **kw: read_rows.append(kw) or real_rows(self, **kw))
    outcomes = run_pipeline(load_config(None, base=base))
    assert [o.status for o in outcomes if o.name != "package"] == ["ran"] * 4
    assert len(shuffles) == 1  # the split was made once, by the artifact
    assert planned == [False]  # the artifact itself: split once from the file; no stage splits again
    assert len(read_rows) >= 3 and {"streamed": True} in read_rows  # distill, quantize and bench read its rows
    assert read_plan(tmp_path / "runs" / "s") is not None

    again = run_pipeline(load_config(None, base=base))
    assert {o.name: o.status for o in again}["distill"] == "skipped"
    _stsb_like(src, n=80, tweak=" (edited)")
    edited = {o.name: o.status for o in run_pipeline(load_config(None, base=base))}
    assert edited["distill"] == "ran" and edited["quantize"] == "ran" and edited["bench"] == "ran"
