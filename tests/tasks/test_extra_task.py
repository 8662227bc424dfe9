"""Adding a task is one file plus its tests: this file is both for a small task of its own.

"review-sentiment" reads JSON Lines reviews (``{"review": ..., "positive": true}``) with its own loader, trains a
two-class head, is scored by the F1 of its positive class and compared with a reference model by label agreement.
It is registered here only (the registry dict is patched for the test) and runs finetune -> distill -> export ->
quantize -> bench through ``compress.run.pipeline.run_pipeline`` with no other module knowing its name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compress.data.rows import TextData
from compress.data.files import builtin_pydoc_sentences
from compress.data.split import capped_splits, carve_splits
from compress.core.errors import DataError
from compress.tasks import TASKS
from compress.tasks.spec import Gold, HeadSpec, Outputs, OutputSpec, Score, TaskSpec, row_argmax

NAME = "review-sentiment"


def read_reviews(source: str) -> TextData:
    """A JSONL file of reviews: the text under "review", the gold under "positive" (true / false)."""
    rows = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    for i, row in enumerate(rows):
        if not isinstance(row.get("review"), str) or not isinstance(row.get("positive"), bool):
            raise DataError(f"data '{source}' row {i + 1}: needs \"review\" (text) and \"positive\" (true or false)")
    return TextData([r["review"] for r in rows], labels=[int(r["positive"]) for r in rows], source=source,
                    label_names=["negative", "positive"])


def load_review_splits(data_cfg: Any, seed: int, task: str = NAME, **_class_checks: Any) -> Any:
    """Train/eval/test reviews per the data config (eval split off train unless data.eval is given)."""
    return capped_splits(carve_splits(data_cfg, seed, read_reviews(data_cfg.train), read_reviews), data_cfg)


def read_review_eval(source: str, task: str, *_columns: str | None) -> TextData:
    """One eval file's reviews (bench --data): the fields are fixed, so no column applies."""
    return read_reviews(source)


def score(out: Outputs, gold: Gold) -> Score | None:
    """F1 of the positive class (and accuracy) of the argmax against the gold labels."""
    from sklearn.metrics import accuracy_score, f1_score

    if gold.labels is None:
        return None
    pred, labels = row_argmax(out["a"]), np.asarray(gold.labels).astype(int)
    extra = {"positive_f1": float(f1_score(labels, pred, pos_label=1, zero_division=0)),
             "accuracy": float(accuracy_score(labels, pred))}
    return Score("positive_f1", extra["positive_f1"], extra)


def agreement(out: Outputs, ref: Outputs) -> float:
    """Share of reviews given the same label as the reference model gives."""
    return float(np.mean(row_argmax(out["a"]) == row_argmax(ref["a"])))


SPEC = TaskSpec(
    name=NAME,
    head=HeadSpec(NAME, "AutoModelForSequenceClassification", (
        OutputSpec("logits", ("batch", "num_labels"), "negative / positive scores; argmax indexes labels.json"),
    ), weights=("classifier", "score", "pre_classifier")),
    metric="positive_f1", fidelity="label_agreement", score=score, agreement=agreement,
    optimum_task="text-classification", pipeline_tag="text-classification", cached=True, static_calibration=True,
    class_names=True, ort_class="ORTModelForSequenceClassification", label_kind="classes",
    loader=load_review_splits, reader=read_review_eval, example="A film worth seeing twice.",
)


@pytest.fixture
def review_task(monkeypatch):
    """The task registered for one test; the registry is as it was afterwards."""
    monkeypatch.setitem(TASKS, NAME, SPEC)
    return SPEC


def _reviews(path: Path, sentences: list[str]) -> Path:
    rows = [{"review": s, "positive": len(s.split()) % 2 == 0} for s in sentences]  # a rule the words decide
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_task_registered_in_one_place_runs_finetune_distill_export_quantize_bench(review_task, tmp_path,
                                                                                    tiny_model_dir):
    from compress.config import load_config
    from compress.run.pipeline import run_pipeline
    from compress.run.schema import validate_stage_dir

    sents = builtin_pydoc_sentences()
    train, test = _reviews(tmp_path / "train.jsonl", sents[:120]), _reviews(tmp_path / "test.jsonl", sents[120:170])
    cfg = load_config(None, base={
        "name": "reviews", "output_dir": str(tmp_path / "runs"), "task": NAME,
        "stages": ["finetune", "distill", "export", "quantize", "bench"],
        "teacher": {"model": str(tiny_model_dir("bert", "embedding")), "max_length": 32},
        "data": {"train": str(train), "test": str(test), "eval_fraction": 0.2},
        "finetune": {"max_steps": 4, "batch_size": 16}, "student": {"num_layers": 1},
        "distill": {"max_steps": 3, "batch_size": 16, "loss": {"kl": 1.0, "hard": 0.5}},
        "quantize": {"methods": ["dynamic"], "guard": {"eval_samples": 16}},
        "bench": {"min_runs": 3, "min_seconds": 0, "warmup": 1, "max_eval_samples": 40}})
    outcomes = run_pipeline(cfg)
    assert [o.name for o in outcomes][:5] == ["finetune", "distill", "export", "quantize", "bench"]
    run = tmp_path / "runs" / "reviews"
    for stage_dir in sorted(run.glob("0*-*")):
        validate_stage_dir(stage_dir)  # every stage.json (the quantize metrics too) holds to its schema

    teacher = json.loads((run / "01-finetune" / "model" / "config.json").read_text())
    assert teacher["id2label"] == {"0": "negative", "1": "positive"}  # the loader's class names shaped the head

    import onnxruntime as ort
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run / "02-distill" / "model"))
    feeds = dict(tok(["A film worth seeing twice.", "Dull."], padding=True, return_tensors="np"))
    for onnx in (run / "03-export" / "model.onnx", run / "04-quantize" / "model.int8-dynamic.onnx"):
        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        (logits,) = session.run(["logits"], {k: v.astype(np.int64) for k, v in feeds.items() if k in names})
        assert logits.shape == (2, 2) and np.isfinite(logits).all()

    guard = json.loads((run / "04-quantize" / "quantize_report.json").read_text())
    attempt = guard["methods"]["dynamic"]["attempts"][0]  # the task's metric and fidelity, by their names
    assert attempt["basis"] == "positive_f1" and 0.0 <= attempt["label_agreement"] <= 1.0
    assert attempt["retention"] == pytest.approx(attempt["positive_f1"] / attempt["fp32_positive_f1"], abs=1e-3)

    report = json.loads((run / "report.json").read_text())
    assert report["task"] == NAME
    rows = {r["name"]: r for r in report["models"]}
    assert {"teacher", "student-pytorch", "student-onnx", "student-int8-dynamic"} <= set(rows)
    teacher_q = rows["teacher"]["quality"]
    assert teacher_q["metric"] == "positive_f1" and teacher_q["rows"] == 40  # the test reviews, capped at 40
    assert 0.0 <= teacher_q["value"] <= 1.0 and set(teacher_q["extra"]) == {"positive_f1", "accuracy"}
    for row in rows.values():
        assert row["status"] == "ok" and row["quality"]["metric"] == "positive_f1"
        want = row["quality"]["value"] / teacher_q["value"] if teacher_q["value"] else None
        assert row["retention"] == pytest.approx(want, abs=1e-6)  # retention: metric / the teacher's

    assert json.loads((run / "final" / "bundle" / "manifest.json").read_text())["task"] == NAME
    assert json.loads((run / "final" / "bundle" / "labels.json").read_text()) == {"0": "negative", "1": "positive"}


def test_bench_run_reads_an_eval_file_with_the_tasks_reader(review_task, tmp_path):
    from benchmarks.cli.run import load_eval

    path = _reviews(tmp_path / "eval.jsonl", ["two words", "now three words", "four words in all", "one"])
    eval_set = load_eval(str(path), NAME, "sentence", None, None, max_samples=3)
    assert eval_set.texts == ["two words", "now three words", "four words in all"]  # cut to --max-samples
    assert eval_set.labels == [1, 0, 1] and eval_set.label_names == ["negative", "positive"]


def test_the_config_takes_a_registered_task_and_names_the_closest_for_an_unknown_one(review_task):
    from compress.config import load_config
    from compress.core.errors import ConfigError

    base = {"teacher": {"model": "x"}, "data": {"train": "y"}}
    assert load_config(None, base={**base, "task": NAME}).task == NAME
    with pytest.raises(ConfigError, match="did you mean 'review-sentiment'") as exc:
        load_config(None, base={**base, "task": "review-sentimnt"})
    assert "- 'task': unknown task 'review-sentimnt'" in str(exc.value)  # the key, the value, the closest name


def test_an_unregistered_task_is_refused_once_the_registry_is_restored():
    from compress.config import load_config
    from compress.core.errors import ConfigError

    assert NAME not in TASKS  # the fixture's registration did not leak
    with pytest.raises(ConfigError, match=f"unknown task '{NAME}'"):
        load_config(None, base={"teacher": {"model": "x"}, "data": {"train": "y"}, "task": NAME})
