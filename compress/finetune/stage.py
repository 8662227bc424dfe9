"""Teacher fine-tuning: a task head on a pretrained backbone with transformers.Trainer.

AdamW, linear warmup/decay, a few epochs, best checkpoint by the dev metric (accuracy for
classification, Spearman for regression). Output key ``teacher`` so later stages use it.
"""

from __future__ import annotations

from pathlib import Path

from compress.config import RunConfig
from compress.core.distributed import is_main_process
from compress.core.errors import EdgepressError
from compress.run.stages import StageInputs, StageResult
from compress.tasks import TASKS, task_spec
from compress.tasks.spec import Gold


def _metric_fn(task: str, id2label: dict[int, str] | None = None):
    import numpy as np

    from benchmarks import metrics as M

    spec = task_spec(task)

    def compute(pred) -> dict[str, float]:
        logits, labels = pred.predictions, pred.label_ids
        if spec.outputs == "words":  # per-token logits against -100-padded tag ids, read at each word's first token
            from compress.tasks.ner import first_token_tags

            scores = M.entity_scores(*first_token_tags(logits, labels, id2label))
            return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}
        got = spec.score({"a": np.asarray(logits)}, Gold(labels=np.asarray(labels).reshape(len(logits), -1)[:, 0]))
        return {got.metric: got.value, **got.extra}  # the task metric as the guard and the bench score it

    return compute


def _training_arguments(cfg: RunConfig, inputs: StageInputs, metric: str):
    """Trainer settings of the finetune stage: AdamW, linear schedule, epoch evaluation, best checkpoint by ``metric``."""
    import torch
    from transformers import TrainingArguments

    f = cfg.finetune
    return TrainingArguments(
        output_dir=str(inputs.run_dir / ".checkpoints" / f"finetune-{cfg.section_hash(('task', 'seed', 'teacher', 'data', 'finetune'))}"),
        per_device_train_batch_size=f.batch_size, per_device_eval_batch_size=64, num_train_epochs=f.epochs,
        max_steps=f.max_steps, learning_rate=f.learning_rate, weight_decay=f.weight_decay, warmup_ratio=f.warmup_ratio,
        lr_scheduler_type="linear", eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model=metric, greater_is_better=True, logging_steps=20,
        report_to=[], seed=cfg.seed, use_cpu=not torch.cuda.is_available(), save_safetensors=True,
    )


def _run_token_classification(cfg: RunConfig, inputs: StageInputs, out_dir: Path, splits) -> StageResult:
    """A token-classification head (NER) on the teacher's backbone: run_ner's recipe, entity F1 (seqeval) on dev."""
    from transformers import DataCollatorForTokenClassification, Trainer

    from compress.run.checkpoints import resumable_checkpoint
    from compress.core.console import use_stage_progress
    from compress.distill.engine import save_loss_curves
    from compress.model.interface import ModelInterface, read_interface, save_model
    from compress.model.loading import load_model, load_tokenizer, words_tokenizer
    from compress.tasks.ner import label_names, tokenized_dataset

    names = label_names(splits.train)
    id2label = dict(enumerate(names))
    label2id = {n: i for i, n in id2label.items()}
    model = load_model(cfg.teacher.model, cfg.task, allow_new_head=True, id2label=id2label)
    tok = words_tokenizer(load_tokenizer(cfg.teacher.model))  # saved with the teacher: its folder takes words
    ml = cfg.teacher.max_length
    train = tokenized_dataset(tok, splits.train, label2id, ml)
    dev = tokenized_dataset(tok, splits.eval, label2id, ml)
    args = _training_arguments(cfg, inputs, "f1")
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                      data_collator=DataCollatorForTokenClassification(tok), compute_metrics=_metric_fn(cfg.task, id2label))
    use_stage_progress(trainer)
    trainer.train(resume_from_checkpoint=resumable_checkpoint(Path(args.output_dir)))
    final = trainer.evaluate()
    outputs = {"teacher": "model"}
    if is_main_process():
        base = read_interface(cfg.teacher.model, "embedding")
        iface = ModelInterface(cfg.task, max_seq_length=base.max_seq_length, id2label=id2label,
                               source=str(out_dir / "model"))
        save_model(trainer.model, tok, iface, out_dir / "model")
        outputs.update(save_loss_curves([h for h in trainer.state.log_history if "loss" in h], out_dir))
    metrics = {"base_model": cfg.teacher.model, "num_labels": len(names), "eval_metric": "f1",
               "id2label": {str(k): v for k, v in id2label.items()}, "teacher_eval": final.get("eval_f1"),
               "teacher_eval_precision": final.get("eval_precision"), "teacher_eval_recall": final.get("eval_recall"),
               "train_examples": len(train)}
    return StageResult(outputs=outputs, metrics=metrics)


def _run_question_answering(cfg: RunConfig, inputs: StageInputs, out_dir: Path, splits) -> StageResult:
    """A span head (start/end logits) on the teacher's backbone, run_qa's recipe; best epoch by dev SQuAD F1."""
    from transformers import default_data_collator

    from compress.run.checkpoints import resumable_checkpoint
    from compress.core.console import use_stage_progress
    from compress.distill.engine import EvalProbe, probe_trainer, save_loss_curves
    from compress.model.interface import ModelInterface, read_interface, save_model
    from compress.model.loading import load_model, load_tokenizer
    from compress.tasks.qa import eval_features, feature_dataset, train_features

    model = load_model(cfg.teacher.model, cfg.task, allow_new_head=True)
    tok = load_tokenizer(cfg.teacher.model)
    ml, stride = cfg.teacher.max_length, cfg.data.doc_stride
    train = feature_dataset(train_features(tok, splits.train.examples, ml, stride))
    dev = feature_dataset(eval_features(tok, splits.eval.examples, ml, stride))
    args = _training_arguments(cfg, inputs, "f1")
    iface = ModelInterface(cfg.task, max_seq_length=read_interface(cfg.teacher.model, "embedding").max_seq_length)
    probe = EvalProbe(tok, splits.eval, cfg.task, ml, None, iface)  # SQuAD F1 of the answers, run_qa's post-processing
    trainer = probe_trainer(probe, model=model, args=args, train_dataset=train, eval_dataset=dev,
                            data_collator=default_data_collator)
    use_stage_progress(trainer)
    trainer.train(resume_from_checkpoint=resumable_checkpoint(Path(args.output_dir)))
    from compress.tasks.qa import tuned_answer_quality

    scored = tuned_answer_quality(trainer.model, tok, splits.eval, ml)
    iface.null_threshold = scored["threshold"]  # run_qa's null_score_diff_threshold, tuned on dev
    untuned_f1 = scored["untuned"]["f1"]
    final = {f"eval_{k}": v for k, v in scored["tuned"].items()}
    outputs = {"teacher": "model"}
    if is_main_process():
        iface.source = str(out_dir / "model")
        save_model(trainer.model, tok, iface, out_dir / "model")
        outputs.update(save_loss_curves([h for h in trainer.state.log_history if "loss" in h], out_dir))
    metrics = {"base_model": cfg.teacher.model, "eval_metric": "f1", "teacher_eval": final.get("eval_f1"),
               "teacher_eval_exact": final.get("eval_exact"), "train_windows": len(train),
               "train_questions": len(splits.train), "null_threshold": iface.null_threshold,
               "teacher_eval_untuned": untuned_f1}
    metrics.update({k[5:]: v for k, v in final.items() if k.startswith(("eval_HasAns", "eval_NoAns"))})
    return StageResult(outputs=outputs, metrics=metrics)


def run_stage(cfg: RunConfig, inputs: StageInputs, out_dir: Path) -> StageResult:
    from transformers import DataCollatorWithPadding, Trainer, set_seed

    from compress.run.checkpoints import resumable_checkpoint  # edgepress: damaged checkpoints are skipped
    from compress.core.console import use_stage_progress
    from compress.distill.engine import TokenizedExamples, save_loss_curves
    from compress.model.loading import load_model, load_tokenizer

    spec = task_spec(cfg.task)
    if not spec.train_labels:
        raise EdgepressError(f"finetune trains on labels: it needs task "
                             f"{', '.join(n for n, s in TASKS.items() if s.train_labels)}, not '{cfg.task}'")
    set_seed(cfg.seed)
    splits = inputs.data.splits()
    if spec.outputs == "words":
        return _run_token_classification(cfg, inputs, out_dir, splits)
    if spec.outputs == "answers":
        return _run_question_answering(cfg, inputs, out_dir, splits)
    names = getattr(splits.train, "label_names", None)
    id2label = dict(enumerate(names)) if spec.class_names and names else None
    num_labels = cfg.teacher.num_labels or (len(set(splits.train.labels)) if spec.class_names else 1)
    if id2label is not None and num_labels != len(id2label):
        raise EdgepressError(f"teacher.num_labels={num_labels}, but the training data has {len(id2label)} class names "
                             f"({', '.join(names[:6])}); remove teacher.num_labels or fix the data")
    model = load_model(cfg.teacher.model, cfg.task, num_labels=num_labels, allow_new_head=True, id2label=id2label)
    tok = load_tokenizer(cfg.teacher.model)
    ml = cfg.teacher.max_length
    train = TokenizedExamples(tok, splits.train.texts, splits.train.pairs, splits.train.labels, ml)
    dev = TokenizedExamples(tok, splits.eval.texts, splits.eval.pairs, splits.eval.labels, ml)
    for ds in (train, dev):
        for row in ds.rows:
            row.pop("idx")
    metric = spec.metric
    args = _training_arguments(cfg, inputs, metric)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                      data_collator=DataCollatorWithPadding(tok), compute_metrics=_metric_fn(cfg.task))
    use_stage_progress(trainer)  # one bar named after the stage; raw log dicts go to the run's log.txt
    trainer.train(resume_from_checkpoint=resumable_checkpoint(Path(args.output_dir)))  # validated first
    final = trainer.evaluate()
    outputs = {"teacher": "model"}
    if is_main_process():
        from compress.model.interface import ModelInterface, read_interface, save_model

        base = read_interface(cfg.teacher.model, "embedding")  # the backbone's own max length
        iface = ModelInterface(cfg.task, max_seq_length=base.max_seq_length,
                               id2label=dict(trainer.model.config.id2label) if spec.class_names else None,
                               source=str(out_dir / "model"))
        save_model(trainer.model, tok, iface, out_dir / "model")
        outputs.update(save_loss_curves([h for h in trainer.state.log_history if "loss" in h], out_dir))
    metrics = {"base_model": cfg.teacher.model, "num_labels": num_labels, "eval_metric": metric,
               "id2label": {str(k): v for k, v in trainer.model.config.id2label.items()} if spec.class_names else None,
               "teacher_eval": final.get(f"eval_{metric}"), "train_examples": len(train)}
    return StageResult(outputs=outputs, metrics=metrics)
