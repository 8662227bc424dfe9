"""Distillation on transformers.Trainer: a custom loss, nothing hand-rolled around it.

Gradient accumulation, mixed precision, checkpoint/resume, logging and multi-process
(``torchrun``/``accelerate launch``) all come from Trainer. The teacher runs without
gradients. Training rows are a ``datasets.Dataset`` (memory-mapped Arrow for files) tokenized lazily by a
``with_transform``, so nothing is tokenized up front; where the teacher's outputs are fixed per row
(embedding, classification, regression without inner-layer losses) they live in a disk cache
(:mod:`compress.distill.cache`) filled as training meets each row and shared by re-runs, ranks and callers.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from compress.distill import terms as T
from compress.model.loading import model_input_names
from compress.core.errors import EdgepressError
from compress.tasks import task_spec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from compress.data.rows import TextData
    from compress.distill.config import DistillConfig
    from compress.model.interface import ModelInterface


@dataclass
class DistillOutcome:
    """The trained student (in memory), summary metrics and the logged history."""

    model: "PreTrainedModel"
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


class TokenizedExamples(torch.utils.data.Dataset):
    """Tokenized rows (unpadded) with their index, so cached teacher outputs can be looked up."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", texts: list[str], pairs: list[str] | None,
                 labels: list[Any] | None, max_length: int):
        enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
        self.rows = []
        for i in range(len(texts)):
            row = {k: enc[k][i] for k in enc.keys()}
            row["idx"] = i
            if labels is not None:
                row["labels"] = labels[i]
            self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return dict(self.rows[i])


class LazyTokenizer:
    """``datasets`` transform: tokenizes the rows a batch asks for (unpadded), passes "key" and "labels" on."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        enc = self.tokenizer(batch["text"], batch.get("pair"), truncation=True, max_length=self.max_length)
        out = {k: enc[k] for k in enc.keys()}
        out["key"] = batch["key"]
        if "labels" in batch:
            out["labels"] = batch["labels"]
        return out


def training_rows(train: "TextData | Any", task: str) -> Any:
    """The rows to distill on as a ``datasets.Dataset`` with a "key" column (text key of text + pair).

    A ``datasets.Dataset`` (e.g. :func:`compress.data.rows.distillation_dataset`) passes through; a TextData
    (QAT, library callers) becomes one, each side of an embedding pair its own row, as before."""
    import datasets

    from compress.distill.cache import text_keys

    if isinstance(train, datasets.Dataset):
        if "key" not in train.column_names:
            pairs = train["pair"] if "pair" in train.column_names else None
            train = train.add_column("key", text_keys(train["text"], pairs))
        return train
    texts, pairs, labels = train.texts, train.pairs, train.labels
    if task_spec(task).pooled and pairs is not None:  # sentence embeddings: each side is its own example
        texts, pairs, labels = list(dict.fromkeys(texts + pairs)), None, None
    cols: dict[str, Any] = {"text": list(texts), "key": text_keys(texts, pairs)}
    if pairs is not None:
        cols["pair"] = list(pairs)
    if labels is not None and task_spec(task).sentence_logits:
        cols["labels"] = list(labels)
    return datasets.Dataset.from_dict(cols)


class DistillCollator:
    """Pads (and for MLM masks 15 % with 80/10/10 via DataCollatorForLanguageModeling); keeps "idx"/"key"."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", mlm_probability: float | None, seed: int = 0,
                 token_labels: bool = False):
        from transformers import DataCollatorForLanguageModeling, DataCollatorForTokenClassification, DataCollatorWithPadding

        self.token_labels = DataCollatorForTokenClassification(tokenizer, return_tensors="pt") if token_labels else None
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.mlm = (DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability,
                                                    return_tensors="pt") if mlm_probability else None)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        features = [dict(f) for f in features]
        extra = {name: torch.tensor([f.pop(name) for f in features], dtype=torch.int64)
                 for name in ("idx", "key") if name in features[0]}
        if self.token_labels is not None:  # per-token labels, padded with -100 like the inputs
            batch = self.token_labels(features)
            batch.update(extra)
            return batch
        labels = [f.pop("labels") for f in features] if "labels" in features[0] else None
        if self.mlm is not None:
            batch = self.mlm(features)
            batch["mlm_labels"] = batch.pop("labels")
        else:
            batch = self.pad(features)
        if labels is not None:
            batch["labels"] = torch.tensor(labels)
        batch.update(extra)
        return batch


def _layer_map(student_layers: int, teacher_layers: int, picked: list[int] | None) -> list[tuple[int, int]]:
    """(student, teacher) indices into hidden_states (0 = embeddings) for hidden-state losses."""
    if picked is not None and len(picked) == student_layers:
        return [(k + 1, t + 1) for k, t in enumerate(picked)]
    return [(k, round(k * teacher_layers / student_layers)) for k in range(1, student_layers + 1)]


def _value_module(model: "PreTrainedModel") -> torch.nn.Module:
    from compress.distill.student import layer_stack

    last = layer_stack(model)[0][-1]
    for name, mod in last.named_modules():
        if name.endswith(("attention.self.value", "attention.v_lin", "attention.value")):
            return mod
    raise EdgepressError(f"value_kl: no value projection found in {type(model).__name__}'s last layer")


class DistillationTrainer:
    """Namespace for building the Trainer subclass lazily (transformers imports stay out of module import)."""

    @staticmethod
    def build(**kwargs: Any):
        return _trainer_class()(**kwargs)


def _trainer_class() -> type:
    """The Trainer subclass: each method hands off to a module-level function below."""
    from transformers import Trainer

    class _Trainer(Trainer):
        def __init__(self, *args, teacher, task, dcfg, layer_map, projection_needed, pooler, cache=None,
                     fixed_teacher=False, **kw):
            super().__init__(*args, **kw)
            _init_distill_state(self, teacher, task, dcfg, layer_map, pooler, cache, fixed_teacher)

        def _teacher_forward(self, inputs: dict[str, torch.Tensor], need_hidden: bool, need_attn: bool):
            return _teacher_forward(self, inputs, need_hidden, need_attn)

        def _fixed_teacher_outputs(self, inputs: dict[str, torch.Tensor]) -> None:
            _fixed_teacher_outputs(self, inputs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            total, s_out = _distill_loss(self, model, inputs)
            return (total, s_out) if return_outputs else total

        def log(self, logs: dict[str, float], *args, **kwargs) -> None:
            _add_distill_logs(self, logs)
            super().log(logs, *args, **kwargs)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            """The task metric on the eval rows (:class:`EvalProbe`), logged and handed to Trainer's best-model
            bookkeeping; Trainer's own loss-based evaluation when no probe is set."""
            if getattr(self, "quality", None) is None:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            return evaluate_with_probe(self, self.quality, metric_key_prefix)

    return _Trainer


def _init_distill_state(tr: Any, teacher: "PreTrainedModel", task: str, dcfg: "DistillConfig",
                        layer_map: list[tuple[int, int]], pooler: Any, cache: Any, fixed_teacher: bool) -> None:
    """The distillation fields a fresh trainer carries; value-KL hooks capture both value projections."""
    tr.teacher, tr.task, tr.dcfg, tr.layer_map = teacher, task, dcfg, layer_map
    tr.pooler = pooler
    tr.cache, tr.fixed_teacher = cache, fixed_teacher
    tr.teacher_seconds = 0.0
    tr.rows_seen = 0
    tr._t0 = None
    tr._sums = {}
    tr._count = 0
    tr._s_names = model_input_names(tr.model)
    tr._t_names = model_input_names(teacher)
    tr._values = {}
    if dcfg.loss.value_kl > 0:
        _value_module(tr.model).register_forward_hook(lambda m, i, o: tr._values.__setitem__("s", o))
        _value_module(teacher).register_forward_hook(lambda m, i, o: tr._values.__setitem__("t", o))


def _teacher_forward(tr: Any, inputs: dict[str, torch.Tensor], need_hidden: bool, need_attn: bool) -> Any:
    """The teacher's outputs without gradients (moved to the batch's device first); timed into teacher_seconds."""
    t0 = time.perf_counter()
    dev = inputs["input_ids"].device
    if next(tr.teacher.parameters()).device != dev:
        tr.teacher.to(dev)
    with torch.no_grad():
        out = tr.teacher(**{k: v for k, v in inputs.items() if k in tr._t_names},
                         output_hidden_states=need_hidden, output_attentions=need_attn)
    tr.teacher_seconds += time.perf_counter() - t0
    return out


def _last_hidden(out: Any, task: str) -> torch.Tensor:
    """The final hidden states: last_hidden_state for pooled (embedding) models, else hidden_states[-1]."""
    return out.last_hidden_state if task_spec(task).pooled else out.hidden_states[-1]


def _fixed_teacher_outputs(tr: Any, inputs: dict[str, torch.Tensor]) -> None:
    """Teacher outputs (last hidden rounded through fp16, pooled, logits) from the disk cache; rows
    not there are run through the teacher now and written (while the cache has room)."""
    bsz, seq = inputs["input_ids"].shape
    lengths = inputs["attention_mask"].sum(1).tolist()
    keys = inputs["key"].tolist()
    found = _cached_rows(tr.cache, keys, lengths)
    miss = [j for j, f in enumerate(found) if f is None]
    if miss:
        last, emb, logits = _teacher_rows_now(tr, inputs, miss, keys, lengths)
    else:
        last, emb, logits = _empty_teacher_tensors(tr.task, found, seq, inputs["input_ids"].device)
    _copy_cached_rows(found, last, emb, logits)
    inputs["teacher_last_hidden"], inputs["teacher_embedding"] = last, emb
    if logits is not None:
        inputs["teacher_logits"] = logits


def _cached_rows(cache: Any, keys: list[int], lengths: list[int]) -> list[Any]:
    """Per row the cached (hidden, embedding, logits), or None where absent or cached at another length."""
    found = cache.lookup(keys) if cache is not None else [None] * len(keys)
    return [f if f is not None and f[0].shape[0] == n else None for f, n in zip(found, lengths)]


def _teacher_rows_now(tr: Any, inputs: dict[str, torch.Tensor], miss: list[int], keys: list[int],
                      lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Runs the missing rows through the teacher into full-batch tensors (other rows zero) and caches them."""
    ids = inputs["input_ids"]
    bsz, seq = ids.shape
    sel = torch.tensor(miss, device=ids.device)
    sub = {k: v.index_select(0, sel) for k, v in inputs.items() if k in tr._t_names and torch.is_tensor(v)}
    out = _teacher_forward(tr, sub, True, False)
    hidden = _last_hidden(out, tr.task).to(torch.float16).float()  # what the cache holds, so warm == cold
    m_emb = tr.pooler.pooled(hidden, sub["attention_mask"]).float()
    m_logits = out.logits.float() if task_spec(tr.task).sentence_logits else None
    last = torch.zeros(bsz, seq, hidden.shape[-1], device=ids.device)
    emb = torch.zeros(bsz, m_emb.shape[-1], device=ids.device)
    last[sel], emb[sel] = hidden, m_emb
    logits = None
    if m_logits is not None:
        logits = torch.zeros(bsz, m_logits.shape[-1], device=ids.device)
        logits[sel] = m_logits
    if tr.cache is not None:
        h_cpu = hidden.to(torch.float16).cpu().numpy()
        tr.cache.write([keys[j] for j in miss], [h_cpu[i, :lengths[j]] for i, j in enumerate(miss)],
                       m_emb.cpu().numpy(), None if m_logits is None else m_logits.cpu().numpy())
    return last, emb, logits


def _empty_teacher_tensors(task: str, found: list[Any], seq: int,
                           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Zero full-batch tensors shaped like the cached rows (every row was cached)."""
    bsz, width = len(found), found[0][0].shape[1]
    last = torch.zeros(bsz, seq, width, device=device)
    emb = torch.zeros(bsz, found[0][1].shape[0], device=device)
    logits = torch.zeros(bsz, found[0][2].shape[0], device=device) if task_spec(task).sentence_logits else None
    return last, emb, logits


def _copy_cached_rows(found: list[Any], last: torch.Tensor, emb: torch.Tensor, logits: torch.Tensor | None) -> None:
    """Writes each cached row's hidden states (its own length), embedding and logits into the batch tensors."""
    for j, f in enumerate(found):
        if f is None:
            continue
        h, e, lg = f
        last[j, : h.shape[0]] = torch.from_numpy(h.astype("float32"))
        emb[j] = torch.from_numpy(e)
        if logits is not None and lg is not None:
            logits[j] = torch.from_numpy(lg)


def _distill_loss(tr: Any, model: "PreTrainedModel", inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """The weighted sum of the active loss terms (registry order) and the student's outputs; sums kept for logs."""
    w = tr.dcfg.loss
    if tr._t0 is None:
        tr._t0 = time.perf_counter()
    tr.rows_seen += int(inputs["input_ids"].shape[0])
    if tr.fixed_teacher and "key" in inputs:
        _fixed_teacher_outputs(tr, inputs)
    ctx = _term_context(tr, model, inputs, T.needed(w, T.ATTENTIONS), T.needed(w, T.HIDDEN_STATES))
    terms = {spec.name: spec.compute(ctx) for spec in T.active_terms(w)}  # registry order
    total = sum(getattr(w, k) * v for k, v in terms.items())
    for k, v in terms.items():
        tr._sums[k] = tr._sums.get(k, 0.0) + float(v.detach())
    tr._count += 1
    return total, ctx.student_out


def _term_context(tr: Any, model: "PreTrainedModel", inputs: dict[str, torch.Tensor], need_attn: bool,
                  need_layers: bool) -> "T.TermContext":
    """Student forward, teacher forward unless its outputs came from the cache, gathered for the loss terms."""
    need_hidden_out = not task_spec(tr.task).pooled or need_layers
    s_out = model(**{k: v for k, v in inputs.items() if k in tr._s_names and k not in GOLD_KEYS},
                  output_hidden_states=need_hidden_out, output_attentions=need_attn)
    cached = "teacher_last_hidden" in inputs or "teacher_logits" in inputs
    t_out = None if cached else _teacher_forward(tr, inputs, True, need_attn)
    t_last = inputs.get("teacher_last_hidden")
    if t_last is None and t_out is not None:
        t_last = _last_hidden(t_out, tr.task)
    return T.TermContext(task=tr.task, cfg=tr.dcfg, inputs=inputs, mask=inputs["attention_mask"], student_out=s_out,
                         teacher_out=t_out, student_last=_last_hidden(s_out, tr.task), teacher_last=t_last,
                         pooler=tr.pooler, student=model, teacher=tr.teacher, layer_map=tr.layer_map,
                         values=tr._values)


def _add_distill_logs(tr: Any, logs: dict[str, float]) -> None:
    """On a training-loss log: throughput, each term's mean since the last log, and the teacher cache's state."""
    if "loss" not in logs:
        return
    if tr._t0 is not None:
        world = max(1, tr.args.world_size)
        logs["rows_per_second"] = round(tr.rows_seen * world / max(time.perf_counter() - tr._t0, 1e-9), 1)
    if not tr._count:
        return
    for k, v in tr._sums.items():
        logs[f"loss_{k}"] = round(v / tr._count, 6)
    tr._sums, tr._count = {}, 0
    if tr.cache is not None:
        logs["teacher_cache_mb"] = round(tr.cache.size_bytes() / 2**20, 1)
        seen = tr.cache.stats.hits + tr.cache.stats.misses
        logs["teacher_cache_hit_rate"] = round(tr.cache.stats.hits / seen, 3) if seen else 0.0


def _check_compatible(teacher: "PreTrainedModel", student: "PreTrainedModel", task: str, cfg: "DistillConfig") -> None:
    w = cfg.loss
    active = {k: v for k, v in w.model_dump().items() if v > 0}
    if not active:
        raise EdgepressError("distill.loss: every loss weight is 0; turn on at least one term")
    allowed = T.allowed_terms(task)
    bad = sorted(set(active) - allowed)
    if bad:
        raise EdgepressError(f"distill.loss.{bad[0]} does not apply to task '{task}' (usable: {', '.join(sorted(allowed))})")
    if task_spec(task).scores and w.kl > 0:
        raise EdgepressError("distill.loss.kl needs class probabilities; for regression use hard and/or hidden losses")
    sw, tw = student.config.hidden_size if hasattr(student.config, "hidden_size") else student.config.dim, \
        teacher.config.hidden_size if hasattr(teacher.config, "hidden_size") else teacher.config.dim
    if sw != tw and T.needed(w, T.SAME_WIDTH):
        raise EdgepressError(f"student width {sw} != teacher width {tw}: cos/embed losses need equal widths; "
                             "use hidden_mse (learned projection) and kl/hard instead")


def rows_progress_callback(trainer: Any):
    """A Trainer callback: adds rows/s and the teacher cache's size to the stage's progress bar (its ETA is tqdm's).

    Added after :func:`compress.core.console.use_stage_progress`, so it runs after the bar wrote loss and lr."""
    from transformers import TrainerCallback

    class RowsProgress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "rows_per_second" not in logs:
                return
            bar = next((cb.bar for cb in trainer.callback_handler.callbacks if getattr(cb, "bar", None) is not None),
                       None)
            if bar is not None:
                extra = f"{logs['rows_per_second']:.0f} rows/s"
                if "teacher_cache_mb" in logs:
                    extra += f"  cache {logs['teacher_cache_mb']:.0f} MB ({logs['teacher_cache_hit_rate']:.0%} hits)"
                post = bar.postfix or ""
                bar.set_postfix_str(f"{post}  {extra}" if post else extra, refresh=True)

    return RowsProgress()


GOLD_KEYS = ("labels", "start_positions", "end_positions")  # the hard-label term reads them; the student's own loss does not


def _pretokenized(train: Any) -> bool:
    """A ``datasets.Dataset`` that already holds input ids (and per-token labels): trained on as it is."""
    return hasattr(train, "column_names") and "input_ids" in train.column_names




def can_cache(task: str, cfg: "DistillConfig") -> bool:
    """Teacher outputs are fixed per example unless inputs are re-masked or inner layers are needed (the cache holds
    sentence-level logits: token classification runs the teacher every step)."""
    w = cfg.loss
    return cfg.cache_teacher and task_spec(task).cached and w.hidden_mse == 0 and w.attn_kl == 0 and w.value_kl == 0


def _enclosing_cache(out_dir: Path) -> Path | None:
    """The nearest ``<folder>/.cache/teacher`` above ``out_dir`` (a run's cache, for callers inside a run)."""
    for parent in Path(out_dir).resolve().parents:
        if (parent / ".cache" / "teacher").is_dir():
            return parent / ".cache"
    return None


def open_teacher_cache(teacher: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", task: str,
                       cfg: "DistillConfig", max_length: int, interface: "ModelInterface", cache_dir: Path | None,
                       out_dir: Path) -> "Any":
    """The disk cache of this teacher's outputs, or None (cache off / no folder).

    ``cache_dir`` (the stage's run cache) or ``distill.cache_dir`` is opened read-write; without either, a
    run's cache above ``out_dir`` (QAT inside a run) is used read-only."""
    from compress.distill.cache import TeacherCache, teacher_key
    from compress.core.distributed import rank
    from compress.model.interface import hidden_size

    if not can_cache(task, cfg) or cfg.cache_max_gb <= 0:
        return None
    root = Path(cache_dir) if cache_dir is not None else Path(cfg.cache_dir) if cfg.cache_dir else None
    writable = root is not None
    root = root or _enclosing_cache(out_dir)
    if root is None:
        return None
    n_logits = int(teacher.config.num_labels) if task_spec(task).sentence_logits else 0
    iface = interface.to_dict()
    key = teacher_key(teacher, iface, task, tokenizer, max_length)
    return TeacherCache(root / "teacher", key, hidden_size(teacher.config), n_logits,
                        int(cfg.cache_max_gb * 2**30), rank=rank(), writable=writable,
                        describe={"task": task, "max_length": max_length, "interface": iface,
                                  "teacher": getattr(teacher.config, "_name_or_path", "")})


def evaluate_with_probe(trainer: Any, probe: "EvalProbe", prefix: str = "eval") -> dict[str, float]:
    """A Trainer evaluation that scores the model with ``probe`` (the task metric on the eval rows), logs it and
    hands it to Trainer's best-model bookkeeping (``metric_for_best_model = eval_<metric>``)."""
    metrics = {f"{prefix}_{probe.metric}": probe(trainer.model)}
    trainer.log(metrics)
    trainer.control = trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, metrics)
    return metrics


def probe_trainer(probe: "EvalProbe", **kwargs: Any) -> Any:
    """A ``transformers.Trainer`` whose evaluation is ``probe`` (e.g. QA fine-tuning: SQuAD F1 needs the answers'
    text, which Trainer's compute_metrics never sees)."""
    from transformers import Trainer

    class ProbeTrainer(Trainer):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            return evaluate_with_probe(self, probe, metric_key_prefix)

    return ProbeTrainer(**kwargs)


class EvalProbe:
    """The eval split scored with the task metric of :func:`compress.distill.evaluate.task_quality` (accuracy,
    Spearman, F1, or the task's fidelity to the teacher's outputs ``reference``), for evaluation during distillation."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", data: "TextData", task: str, max_length: int,
                 reference: Any, interface: "ModelInterface"):
        from compress.distill.evaluate import quality_metric

        self.tokenizer, self.data, self.task, self.max_length = tokenizer, data, task, max_length
        self.reference, self.interface = reference, interface
        self.metric = quality_metric(task, data, reference is not None)

    def __call__(self, model: "PreTrainedModel") -> float:
        from compress.distill.evaluate import task_quality
        from compress.tasks.qa import tuned_null_threshold

        was_training = model.training
        if task_spec(self.task).outputs == "answers" and self.metric == "f1":
            # SQuAD 2.0 checkpoints are compared at their own tuned no-answer threshold (the official best_f1),
            # the one they ship with: at threshold 0 an early all-"no answer" checkpoint can outscore later ones
            value = tuned_null_threshold(model, self.tokenizer, self.data, self.max_length)["f1"]
        else:
            value = task_quality(model, self.tokenizer, self.data, self.task, self.max_length, self.reference,
                                 self.interface)["value"]
        model.train(was_training)
        return float(value)


def eval_probe(teacher: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", eval: "TextData | None", task: str,
               max_length: int, reference: Any, interface: "ModelInterface") -> EvalProbe | None:
    """A probe for ``eval``, or None when there is nothing to score (no rows, no labels and no teacher reference)."""
    from compress.distill.evaluate import encode, quality_metric

    if eval is None or len(eval) == 0:
        return None
    if reference is None and quality_metric(task, eval, False) == "none" and not task_spec(task).token_level:
        reference = encode(teacher, tokenizer, eval.texts, task, max_length, interface=interface)
    return EvalProbe(tokenizer, eval, task, max_length, reference, interface)


def checkpoint_schedule(cfg: "DistillConfig", total_steps: int, probe: EvalProbe | None,
                        save_checkpoints: bool) -> dict[str, Any]:
    """TrainingArguments for saving, evaluating and keeping the best checkpoint.

    Evaluation runs every ``eval_steps`` (default: at each checkpoint); with ``keep_best`` the checkpoint with the
    best eval metric is the result, which needs checkpoints on a multiple of the evaluation interval."""
    from compress.core.errors import ConfigError

    save_every = cfg.save_steps or max(10, total_steps // 4)
    evaluate = probe is not None and (cfg.keep_best or cfg.eval_steps is not None)
    if not evaluate:
        return {"save_strategy": "steps" if save_checkpoints else "no", "save_steps": save_every, "eval_strategy": "no"}
    every = cfg.eval_steps or save_every
    keep_best = cfg.keep_best and save_checkpoints
    if keep_best and cfg.save_steps is not None and cfg.save_steps % every:
        raise ConfigError(f"distill.save_steps={cfg.save_steps} is not a multiple of distill.eval_steps={every}: keep_best "
                          "keeps a checkpoint at evaluated steps; make save_steps a multiple, or keep_best: false")
    return {"save_strategy": "steps" if save_checkpoints else "no",
            "save_steps": (cfg.save_steps or every) if keep_best else save_every,
            "eval_strategy": "steps", "eval_steps": every, "load_best_model_at_end": keep_best,
            "metric_for_best_model": f"eval_{probe.metric}", "greater_is_better": True}


def final_evaluation_callback():
    """A Trainer callback: evaluate (and checkpoint) at the last step too, so the final weights compete for best."""
    from transformers import TrainerCallback

    class EvaluateAtEnd(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps and args.eval_strategy != "no":
                control.should_evaluate = True
                control.should_save = args.save_strategy != "no"
            return control

    return EvaluateAtEnd()


def distill_model(teacher: "PreTrainedModel", student: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase",
                  train: "TextData | Any", eval: "TextData | None", task: str, cfg: "DistillConfig", max_length: int,
                  out_dir: Path, seed: int, checkpoint_dir: Path | None = None,
                  picked_layers: list[int] | None = None, save_checkpoints: bool = True,
                  interface: "ModelInterface | None" = None, cache_dir: Path | None = None,
                  eval_reference: Any = None) -> DistillOutcome:
    """Train ``student`` to imitate ``teacher`` on ``train`` with the configured loss mix.

    ``train`` is a TextData or a ``datasets.Dataset`` ("text"[, "pair"][, "labels"][, "key"]), tokenized
    lazily as batches are drawn. ``eval`` rows are scored with the task metric every ``cfg.eval_steps`` and,
    with ``cfg.keep_best``, the best-scoring checkpoint is returned (``eval_reference``: the teacher's
    embeddings of ``eval`` for the fidelity metric; computed here when needed and not given).
    ``save_checkpoints=False`` (short runs such as QAT) trains without writing resumable checkpoints.
    ``interface`` says how sentence embeddings are pooled (default: mean). ``cache_dir``: folder of the
    on-disk caches (teacher outputs under ``teacher/``), see :func:`open_teacher_cache`.
    """
    from compress.model.interface import ModelInterface, SentencePooler, hidden_size

    from transformers import TrainingArguments, set_seed
    from compress.run.checkpoints import resumable_checkpoint  # edgepress: damaged checkpoints are skipped
    from compress.core.console import use_stage_progress

    _check_compatible(teacher, student, task, cfg)
    set_seed(seed)
    if _pretokenized(train):  # token classification: words already aligned with their tags
        ds = train
    else:
        ds = training_rows(train, task).with_transform(LazyTokenizer(tokenizer, max_length))
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    interface = interface or ModelInterface("embedding")
    pooler = SentencePooler(interface, hidden_size(teacher.config))
    cache = open_teacher_cache(teacher, tokenizer, task, cfg, max_length, interface, cache_dir, out_dir)
    collate = DistillCollator(tokenizer, cfg.mlm_probability if task_spec(task).outputs == "tokens" else None,
                              token_labels=task_spec(task).outputs == "words")
    s_layers = student.config.num_hidden_layers if hasattr(student.config, "num_hidden_layers") else student.config.n_layers
    t_layers = teacher.config.num_hidden_layers if hasattr(teacher.config, "num_hidden_layers") else teacher.config.n_layers
    sw = getattr(student.config, "hidden_size", getattr(student.config, "dim", None))
    tw = getattr(teacher.config, "hidden_size", getattr(teacher.config, "dim", None))
    if cfg.loss.hidden_mse > 0 and sw != tw:
        student.distill_projection = torch.nn.Linear(sw, tw)
    if cfg.loss.attn_kl > 0 or cfg.loss.value_kl > 0:
        for m in (student, teacher):
            m.config._attn_implementation = "eager"  # sdpa returns no attention probabilities
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    ckpt = Path(checkpoint_dir or out_dir / "checkpoints")
    steps_per_epoch = math.ceil(len(ds) / (cfg.batch_size * cfg.gradient_accumulation_steps * world))
    total_steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)
    probe = eval_probe(teacher, tokenizer, eval, task, max_length, eval_reference, interface) \
        if cfg.keep_best or cfg.eval_steps is not None else None
    schedule = checkpoint_schedule(cfg, total_steps, probe, save_checkpoints)
    args = TrainingArguments(
        output_dir=str(ckpt), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio, lr_scheduler_type="linear", logging_steps=min(cfg.logging_steps, max(1, total_steps)),
        **schedule, save_total_limit=1, report_to=[],
        remove_unused_columns=False,  # the teacher needs columns the student may not take (token_type_ids)
        seed=seed, data_seed=seed, dataloader_num_workers=0, use_cpu=not cuda,
        fp16=cuda and cfg.precision == "fp16", bf16=cuda and cfg.precision == "bf16",
        ddp_backend=None if cuda or world == 1 else "gloo", disable_tqdm=False, save_safetensors=True,
    )
    trainer = DistillationTrainer.build(
        model=student, args=args, train_dataset=ds, data_collator=collate,
        eval_dataset=None if schedule["eval_strategy"] == "no" else
        training_rows(eval, task).with_transform(LazyTokenizer(tokenizer, max_length)), teacher=teacher, task=task, dcfg=cfg,
        layer_map=_layer_map(s_layers, t_layers, picked_layers), projection_needed=sw != tw, pooler=pooler,
        cache=cache, fixed_teacher=can_cache(task, cfg))
    trainer.quality = probe if schedule["eval_strategy"] != "no" else None  # read by the Trainer's evaluate()
    use_stage_progress(trainer)  # one bar named after the stage; raw log dicts go to the run's log.txt
    trainer.add_callback(rows_progress_callback(trainer))  # rows/s and cache size on that bar
    if trainer.quality is not None:
        trainer.add_callback(final_evaluation_callback())
    last = resumable_checkpoint(ckpt) if save_checkpoints else None  # validated; damaged ones discarded
    t0 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    finally:
        if cache is not None:
            cache.close()
    train_seconds = time.perf_counter() - t0
    if hasattr(student, "distill_projection"):
        del student.distill_projection
    student.eval()
    teacher_seconds = trainer.teacher_seconds
    metrics = {
        "train_examples": len(ds), "steps": result.global_step, "train_loss": round(result.training_loss, 6),
        "train_seconds": round(train_seconds, 2), "teacher_forward_seconds": round(teacher_seconds, 2),
        "teacher_share": round(teacher_seconds / train_seconds, 4) if train_seconds else 0.0,
        "teacher_cached": cache is not None, "rows_seen": trainer.rows_seen,
        "rows_per_second": round(trainer.rows_seen * world / train_seconds, 1) if train_seconds else 0.0,
        "resumed_from": Path(last).name if last else None, "world_size": world,
    }
    if trainer.quality is not None:
        metrics.update(evaluation_summary(trainer, trainer.quality.metric))
    if cache is not None:
        metrics.update(cache.metrics())
    return DistillOutcome(student, metrics, [h for h in trainer.state.log_history if "loss" in h])


def evaluation_summary(trainer: Any, metric: str) -> dict[str, Any]:
    """The eval-split scores logged during training and which step's weights were kept."""
    key = f"eval_{metric}"
    history = [{"step": h["step"], metric: round(float(h[key]), 6)} for h in trainer.state.log_history if key in h]
    kept = trainer.state.best_global_step if trainer.args.load_best_model_at_end else None
    return {"eval_metric_during_training": metric, "eval_history": history,
            "best_step": kept,
            "best_eval": round(float(trainer.state.best_metric), 6) if trainer.state.best_metric is not None else None,
            "kept": "best" if kept is not None else "last"}


def save_loss_curves(history: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """loss_curve.csv (one row per logging step, one column per term) and loss_curve.png."""
    import csv

    if not history:
        return {}
    keys = ["step", "epoch", "loss", "learning_rate"] + sorted({k for h in history for k in h if k.startswith("loss_")})
    csv_path = out_dir / "loss_curve.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for h in history:
            writer.writerow({k: h.get(k, "") for k in keys})
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))  # its own canvas: matplotlib's global backend is left alone
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    steps = [h["step"] for h in history]
    for k in [k for k in keys if k.startswith("loss")]:
        ys = [h.get(k) for h in history]
        if any(y is not None for y in ys):
            ax.plot(steps, [y if y is not None else float("nan") for y in ys], label=k)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("distillation loss by term")
    fig.tight_layout()
    fig.savefig(out_dir / "loss_curve.png", dpi=110)
    return {"loss_csv": "loss_curve.csv", "loss_png": "loss_curve.png"}
