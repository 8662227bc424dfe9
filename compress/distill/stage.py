"""The distill stage: teacher -> student (teacher layers or a given model) -> Trainer distillation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.config import RunConfig
from compress.data.rows import distillation_dataset
from compress.core.errors import ConfigError
from compress.core.distributed import is_main_process
from compress.run.stages import StageInputs, StageResult, Variant, distill_cache_root, teacher_source

if TYPE_CHECKING:
    from compress.model.interface import ModelInterface


def build_student(cfg: RunConfig, teacher, teacher_tok):
    """The student per ``cfg.student``: given pretrained model, or teacher layers."""
    from compress.distill.student import check_same_vocab, student_from_teacher
    from compress.model.loading import load_model, load_tokenizer

    if cfg.student.model:
        check_same_vocab(teacher_tok, load_tokenizer(cfg.student.model), cfg.student.model)
        student = load_model(cfg.student.model, cfg.task, num_labels=teacher.config.num_labels, allow_new_head=True)
        return student, None
    return student_from_teacher(teacher, cfg.student.layers, cfg.student.num_layers)


def run_stage(cfg: RunConfig, inputs: StageInputs, out_dir: Path) -> StageResult:
    from compress.distill.engine import distill_model, save_loss_curves
    from compress.distill.evaluate import encode, task_quality
    from compress.model.loading import count_parameters, load_model, load_tokenizer, words_tokenizer
    from compress.tasks import training_features

    from compress.tasks import TASKS, task_spec

    spec_of_task = task_spec(cfg.task)
    if cfg.data.unlabeled and spec_of_task.scores:
        usable = ", ".join(n for n, s in TASKS.items() if s.unlabeled_text)
        raise ConfigError(f"data.unlabeled is used by {usable} distillation; "
                          f"{cfg.task} needs a score for every row: remove data.unlabeled")
    from compress.model.interface import derived_interface, interface_of, save_model

    import torch

    spec = teacher_source(cfg, inputs)
    torch.manual_seed(cfg.seed)  # weights the checkpoint lacks (a pooler, a new head) start the same in every run
    teacher = load_model(spec, cfg.task, num_labels=cfg.teacher.num_labels)
    iface = interface_of(spec, cfg.task)
    cache_root = distill_cache_root(cfg, inputs.run_dir)
    splits = inputs.data.splits(streamed=True)
    tok = load_tokenizer(spec)
    if spec_of_task.outputs == "words":
        tok = words_tokenizer(tok)  # saved with the student: its folder (and bundle) take pre-split words
    student, picked = build_student(cfg, teacher, tok)
    ml = cfg.teacher.max_length
    reference = None
    if not spec_of_task.train_labels and splits.eval.labels is None:  # label-free eval rows: fidelity to the teacher
        reference = encode(teacher, tok, splits.eval.texts, cfg.task, ml, interface=iface)
    teacher_q = task_quality(teacher, tok, splits.eval, cfg.task, ml, reference, iface)
    before = task_quality(student, tok, splits.eval, cfg.task, ml, reference, iface)
    t_ref = None
    if cfg.data.test and reference is not None:
        t_ref = encode(teacher, tok, splits.test.texts, cfg.task, ml, interface=iface)
    naive_test = task_quality(student, tok, splits.test, cfg.task, ml, t_ref, iface)["value"] if cfg.data.test else None
    ckpt = inputs.run_dir / ".checkpoints" / f"distill-{cfg.section_hash(('task', 'seed', 'teacher', 'data', 'student', 'distill'))}"
    train = training_features(cfg.task, tok, teacher.config, splits.train, ml)
    if train is None:
        train = distillation_dataset(cfg.data, cfg.task, splits.train, inputs.data.unlabeled())
    outcome = distill_model(teacher, student, tok, train, splits.eval, cfg.task, cfg.distill, ml, out_dir,
                            cfg.seed, checkpoint_dir=ckpt, picked_layers=picked, interface=iface,
                            cache_dir=cache_root, eval_reference=reference)
    s_iface = derived_interface(iface, outcome.model, tok, splits.eval, ml)
    after = task_quality(outcome.model, tok, splits.eval, cfg.task, ml, reference, s_iface)
    if cfg.data.test:  # the report split, measured for teacher, naive student and distilled student
        test_scores = {"teacher_test": task_quality(teacher, tok, splits.test, cfg.task, ml, t_ref, iface)["value"],
                       "student_test_before": naive_test,
                       "student_test": task_quality(outcome.model, tok, splits.test, cfg.task, ml, t_ref, s_iface)["value"]}
        test_scores["retention_test"] = test_scores["student_test"] / test_scores["teacher_test"]
    else:
        test_scores = {}
    metrics = {
        "teacher": spec, "interface": s_iface.to_dict(), "student_layers": picked, "teacher_params": count_parameters(teacher),
        "student_params": count_parameters(outcome.model), "eval_metric": after["metric"],
        "teacher_eval": teacher_q["value"], "student_eval_before": before["value"], "student_eval": after["value"],
        **test_scores, **outcome.metrics,
    }
    outputs = {"model": "model"}
    if is_main_process():
        save_model(outcome.model, tok, s_iface, out_dir / "model")
        outputs.update(save_loss_curves(outcome.history, out_dir))
    return StageResult(outputs=outputs, metrics=metrics, variants=[Variant("student", "pytorch", "model")])
