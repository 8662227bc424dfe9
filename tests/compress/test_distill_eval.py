"""Evaluation during distillation: the eval split is scored with the task metric at checkpoints, and with
``keep_best`` the best-scoring checkpoint is what the stage returns (Trainer's load_best_model_at_end)."""

import pytest
from pydantic import ValidationError

from compress.data.rows import TextData, builtin_pydoc_sentences
from compress.distill.config import DistillConfig, LossWeights
from compress.distill.engine import checkpoint_schedule, distill_model
from compress.distill.evaluate import task_quality
from compress.distill.student import student_from_teacher
from compress.model.loading import load_model, load_tokenizer


def _regression(n: int, offset: int = 0) -> TextData:
    texts = builtin_pydoc_sentences()[offset:offset + n]
    return TextData(texts, None, [float(len(t)) for t in texts])


def _distill(tiny_model_dir, tmp_path, learning_rate=5e-3, **cfg_kw):
    """A regression student scored by Spearman on a dev split (a metric that moves from step to step)."""
    path = tiny_model_dir("bert", "regression")
    teacher = load_model(str(path), "regression")
    tok = load_tokenizer(str(path))
    student, picked = student_from_teacher(teacher, num_layers=1)
    cfg = DistillConfig(batch_size=8, learning_rate=learning_rate, warmup_ratio=0.0, logging_steps=2,
                        loss=LossWeights(hard=1.0), **cfg_kw)
    dev = _regression(32, offset=100)
    out = distill_model(teacher, student, tok, _regression(64), dev, "regression", cfg, 32,
                        tmp_path / "out", seed=0, checkpoint_dir=tmp_path / "ckpt", picked_layers=picked)
    return out, tok, dev


def test_best_checkpoint_is_kept_by_the_dev_metric(tiny_model_dir, tmp_path):
    out, tok, dev = _distill(tiny_model_dir, tmp_path, learning_rate=0.2, max_steps=13, eval_steps=3)
    m = out.metrics
    assert m["eval_metric_during_training"] == "spearman" and m["kept"] == "best"
    steps = [h["step"] for h in m["eval_history"]]
    assert steps == [3, 6, 9, 12, 13]  # every eval_steps, and the last step too
    best = max(h["spearman"] for h in m["eval_history"])
    assert m["best_eval"] == pytest.approx(best)
    first_best = next(h["step"] for h in m["eval_history"] if h["spearman"] == best)
    assert m["best_step"] == first_best
    assert first_best != 13, m["eval_history"]  # (a learning rate this high makes later steps worse)
    # the returned weights are the best checkpoint's: they score the best value again
    assert task_quality(out.model, tok, dev, "regression", 32)["value"] == pytest.approx(best)


def test_keep_best_false_returns_the_last_step(tiny_model_dir, tmp_path):
    out, tok, dev = _distill(tiny_model_dir, tmp_path, max_steps=7, eval_steps=3, keep_best=False)
    m = out.metrics
    assert m["kept"] == "last" and m["best_step"] is None
    assert [h["step"] for h in m["eval_history"]] == [3, 6, 7]
    last = m["eval_history"][-1]["spearman"]
    assert task_quality(out.model, tok, dev, "regression", 32)["value"] == pytest.approx(last)


def test_checkpoints_must_fall_on_evaluated_steps():
    class Probe:
        metric = "accuracy"

    with pytest.raises(ValidationError, match="save_steps=10 is not a multiple of distill.eval_steps=4"):
        DistillConfig(save_steps=10, eval_steps=4)  # refused by the schema, before any run folder exists
    assert DistillConfig(save_steps=10, eval_steps=4, keep_best=False).save_steps == 10
    plan = checkpoint_schedule(DistillConfig(eval_steps=4), 100, Probe(), True)
    assert plan["save_steps"] == 4 and plan["load_best_model_at_end"] and plan["metric_for_best_model"] == "eval_accuracy"
    assert checkpoint_schedule(DistillConfig(), 100, None, True)["eval_strategy"] == "no"
    no_ckpt = checkpoint_schedule(DistillConfig(), 100, Probe(), False)  # QAT: no checkpoints, nothing to reload
    assert no_ckpt["save_strategy"] == "no" and not no_ckpt["load_best_model_at_end"]


def test_qa_probe_scores_a_checkpoint_at_its_tuned_no_answer_threshold(tiny_model_dir):
    """Checkpoints of a SQuAD 2.0 model are compared at their own tuned threshold (official best_f1), which is
    never below the F1 at threshold 0 (an all-"no answer" early checkpoint would otherwise win)."""
    from compress.distill.engine import EvalProbe
    from compress.model.interface import ModelInterface
    from compress.model.loading import load_model, load_tokenizer
    from compress.tasks.qa import QAData, answer_quality, tuned_null_threshold
    from tests.squad_tiny import EXAMPLES

    m = tiny_model_dir("bert", "question-answering")
    model, tok = load_model(str(m), "question-answering"), load_tokenizer(str(m))
    data = QAData(list(EXAMPLES), doc_stride=32)
    probe = EvalProbe(tok, data, "question-answering", 128, None, ModelInterface("question-answering"))
    assert probe.metric == "f1"
    value = probe(model)
    assert value == pytest.approx(tuned_null_threshold(model, tok, data, 128)["f1"])
    assert value >= answer_quality(model, tok, data, 128)["f1"]
