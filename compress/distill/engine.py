"""Distillation on transformers.Trainer: a custom loss, nothing hand-rolled around it.

Gradient accumulation, mixed precision, checkpoint/resume, logging and multi-process
(``torchrun``/``accelerate launch``) all come from Trainer. The teacher runs without
gradients; in embedding/classification mode its outputs are computed once and cached.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from compress.distill import losses as L
from compress.distill.evaluate import model_input_names
from compress.errors import EdgepressError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from compress.data import TextData
    from compress.distill.config import DistillConfig
    from compress.interface import ModelInterface


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


class DistillCollator:
    """Pads (and for MLM masks 15 % with 80/10/10 via DataCollatorForLanguageModeling); attaches cache."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", mlm_probability: float | None,
                 cache: dict[str, list[torch.Tensor]] | None = None, seed: int = 0):
        from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.mlm = (DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability,
                                                    return_tensors="pt") if mlm_probability else None)
        self.cache = cache

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        idx = torch.tensor([f.pop("idx") for f in features])
        labels = [f.pop("labels") for f in features] if "labels" in features[0] else None
        if self.mlm is not None:
            batch = self.mlm(features)
            batch["mlm_labels"] = batch.pop("labels")
        else:
            batch = self.pad(features)
        if labels is not None:
            batch["labels"] = torch.tensor(labels)
        batch["idx"] = idx
        if self.cache:
            seq = batch["input_ids"].shape[1]
            for name, per_row in self.cache.items():
                rows = [per_row[i] for i in idx.tolist()]
                if rows[0].dim() == 2:  # token-level: pad to the batch's length
                    out = torch.zeros(len(rows), seq, rows[0].shape[-1], dtype=torch.float32)
                    for j, r in enumerate(rows):
                        out[j, : r.shape[0]] = r.float()
                    batch[f"teacher_{name}"] = out
                else:
                    batch[f"teacher_{name}"] = torch.stack(rows).float()
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
        from transformers import Trainer

        class _Trainer(Trainer):
            def __init__(self, *args, teacher, task, dcfg, layer_map, projection_needed, pooler, **kw):
                super().__init__(*args, **kw)
                self.teacher, self.task, self.dcfg, self.layer_map = teacher, task, dcfg, layer_map
                self.pooler = pooler
                self.teacher_seconds = 0.0
                self._sums: dict[str, float] = {}
                self._count = 0
                self._s_names = model_input_names(self.model)
                self._t_names = model_input_names(teacher)
                self._values: dict[str, torch.Tensor] = {}
                if dcfg.loss.value_kl > 0:
                    _value_module(self.model).register_forward_hook(lambda m, i, o: self._values.__setitem__("s", o))
                    _value_module(teacher).register_forward_hook(lambda m, i, o: self._values.__setitem__("t", o))

            def _teacher_forward(self, inputs: dict[str, torch.Tensor], need_hidden: bool, need_attn: bool):
                t0 = time.perf_counter()
                dev = inputs["input_ids"].device
                if next(self.teacher.parameters()).device != dev:
                    self.teacher.to(dev)
                with torch.no_grad():
                    out = self.teacher(**{k: v for k, v in inputs.items() if k in self._t_names},
                                       output_hidden_states=need_hidden, output_attentions=need_attn)
                self.teacher_seconds += time.perf_counter() - t0
                return out

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                w, d = self.dcfg.loss, self.dcfg
                mask = inputs["attention_mask"]
                need_layers = w.hidden_mse > 0
                need_attn = w.attn_kl > 0
                need_hidden_out = self.task != "embedding" or need_layers
                s_out = model(**{k: v for k, v in inputs.items() if k in self._s_names and k != "labels"},
                              output_hidden_states=need_hidden_out, output_attentions=need_attn)
                s_last = s_out.last_hidden_state if self.task == "embedding" else s_out.hidden_states[-1]
                cached = "teacher_last_hidden" in inputs or "teacher_logits" in inputs
                t_out = None if cached else self._teacher_forward(inputs, True, need_attn)
                t_last = inputs.get("teacher_last_hidden")
                if t_last is None and t_out is not None:
                    t_last = t_out.last_hidden_state if self.task == "embedding" else t_out.hidden_states[-1]
                terms: dict[str, torch.Tensor] = {}
                if w.cos > 0:
                    terms["cos"] = L.hidden_cosine(s_last, t_last, mask)
                if w.embed_mse > 0 or w.embed_cos > 0:
                    s_emb = self.pooler.pooled(s_last, mask)
                    t_emb = inputs.get("teacher_embedding")
                    if t_emb is None:
                        t_emb = self.pooler.pooled(t_last, mask)
                    if w.embed_mse > 0:
                        terms["embed_mse"] = L.embedding_mse(s_emb, t_emb)
                    if w.embed_cos > 0:
                        terms["embed_cos"] = L.embedding_cosine(s_emb, t_emb)
                if w.kl > 0:
                    t_logits = inputs.get("teacher_logits", t_out.logits if t_out is not None else None)
                    if self.task == "mlm":
                        terms["kl"] = L.masked_positions_kl(s_out.logits, t_logits, inputs["mlm_labels"], d.temperature,
                                                            d.t_squared, d.kl_reduction) if d.kl_on_masked_only else \
                            L.soft_label_kl(s_out.logits, t_logits, d.temperature, d.t_squared, d.kl_reduction)
                    else:
                        terms["kl"] = L.soft_label_kl(s_out.logits, t_logits, d.temperature, d.t_squared, d.kl_reduction)
                if w.mlm > 0:
                    logits = s_out.logits
                    terms["mlm"] = torch.nn.functional.cross_entropy(
                        logits.view(-1, logits.shape[-1]), inputs["mlm_labels"].view(-1), ignore_index=-100)
                if w.hard > 0:
                    terms["hard"] = L.hard_label_loss(s_out.logits, inputs["labels"], self.task)
                if need_layers:
                    proj = getattr(model, "distill_projection", None)
                    parts = [L.hidden_mse(s_out.hidden_states[si], t_out.hidden_states[ti], mask, proj)
                             for si, ti in self.layer_map]
                    terms["hidden_mse"] = torch.stack(parts).mean()
                if need_attn:
                    terms["attn_kl"] = L.attention_kl(s_out.attentions[-1], t_out.attentions[-1], mask)
                if w.value_kl > 0:
                    heads = model.config.num_attention_heads if hasattr(model.config, "num_attention_heads") else model.config.n_heads
                    t_heads = getattr(self.teacher.config, "num_attention_heads", getattr(self.teacher.config, "n_heads", heads))
                    vs = L.value_relation(self._values["s"], heads, mask)
                    vt = L.value_relation(self._values["t"], t_heads, mask)
                    terms["value_kl"] = L.attention_kl(vs, vt, mask)
                total = sum(getattr(w, k) * v for k, v in terms.items())
                for k, v in terms.items():
                    self._sums[k] = self._sums.get(k, 0.0) + float(v.detach())
                self._count += 1
                return (total, s_out) if return_outputs else total

            def log(self, logs: dict[str, float], *args, **kwargs) -> None:
                if "loss" in logs and self._count:
                    for k, v in self._sums.items():
                        logs[f"loss_{k}"] = round(v / self._count, 6)
                    self._sums, self._count = {}, 0
                super().log(logs, *args, **kwargs)

        return _Trainer(**kwargs)


def _check_compatible(teacher: "PreTrainedModel", student: "PreTrainedModel", task: str, cfg: "DistillConfig") -> None:
    w = cfg.loss
    active = {k: v for k, v in w.model_dump().items() if v > 0}
    if not active:
        raise EdgepressError("distill.loss: every loss weight is 0; turn on at least one term")
    allowed = {"embedding": {"cos", "embed_mse", "embed_cos", "hidden_mse", "attn_kl", "value_kl"},
               "mlm": {"kl", "mlm", "cos", "embed_mse", "embed_cos", "hidden_mse", "attn_kl", "value_kl"},
               "classification": {"kl", "hard", "cos", "embed_mse", "embed_cos", "hidden_mse", "attn_kl", "value_kl"},
               "regression": {"kl", "hard", "cos", "embed_mse", "embed_cos", "hidden_mse", "attn_kl", "value_kl"}}[task]
    bad = sorted(set(active) - allowed)
    if bad:
        raise EdgepressError(f"distill.loss.{bad[0]} does not apply to task '{task}' (usable: {', '.join(sorted(allowed))})")
    if task == "regression" and w.kl > 0:
        raise EdgepressError("distill.loss.kl needs class probabilities; for regression use hard and/or hidden losses")
    sw, tw = student.config.hidden_size if hasattr(student.config, "hidden_size") else student.config.dim, \
        teacher.config.hidden_size if hasattr(teacher.config, "hidden_size") else teacher.config.dim
    if sw != tw and (w.cos > 0 or w.embed_mse > 0 or w.embed_cos > 0):
        raise EdgepressError(f"student width {sw} != teacher width {tw}: cos/embed losses need equal widths; "
                             "use hidden_mse (learned projection) and kl/hard instead")


def _teacher_cache(teacher: "PreTrainedModel", dataset: TokenizedExamples, collate, task: str,
                   batch_size: int, pooler: Any) -> tuple[dict[str, list[torch.Tensor]], float]:
    """Teacher outputs for every example, computed once (last hidden unpadded, pooled, logits)."""
    names = model_input_names(teacher)
    cache: dict[str, list[torch.Tensor]] = {"last_hidden": [], "embedding": []}
    if task in ("classification", "regression"):
        cache["logits"] = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    t0 = time.perf_counter()
    teacher.eval()
    from tqdm.auto import tqdm

    with torch.inference_mode():
        for batch in tqdm(loader, desc="distill: teacher outputs (computed once)", unit="batch", leave=False):
            out = teacher(**{k: v for k, v in batch.items() if k in names}, output_hidden_states=True)
            hidden = out.last_hidden_state if task == "embedding" else out.hidden_states[-1]
            emb = pooler.pooled(hidden, batch["attention_mask"])
            for j in range(hidden.shape[0]):
                n = int(batch["attention_mask"][j].sum())
                cache["last_hidden"].append(hidden[j, :n].to(torch.float16).clone())
                cache["embedding"].append(emb[j].clone())
                if "logits" in cache:
                    cache["logits"].append(out.logits[j].clone())
    return cache, time.perf_counter() - t0


def can_cache(task: str, cfg: "DistillConfig") -> bool:
    """Teacher outputs are fixed per example unless inputs are re-masked or inner layers are needed."""
    w = cfg.loss
    return cfg.cache_teacher and task != "mlm" and w.hidden_mse == 0 and w.attn_kl == 0 and w.value_kl == 0


def distill_model(teacher: "PreTrainedModel", student: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase",
                  train: "TextData", eval: "TextData | None", task: str, cfg: "DistillConfig", max_length: int,
                  out_dir: Path, seed: int, checkpoint_dir: Path | None = None,
                  picked_layers: list[int] | None = None, save_checkpoints: bool = True,
                  interface: "ModelInterface | None" = None) -> DistillOutcome:
    """Train ``student`` to imitate ``teacher`` on ``train`` with the configured loss mix.

    ``save_checkpoints=False`` (short runs such as QAT) trains without writing resumable checkpoints.
    ``interface`` says how sentence embeddings are pooled for the embedding losses (default: mean).
    """
    from compress.interface import ModelInterface, SentencePooler, hidden_size

    from transformers import TrainingArguments, set_seed
    from compress.checkpoints import resumable_checkpoint  # edgepress: damaged checkpoints are skipped
    from compress.console import use_stage_progress

    _check_compatible(teacher, student, task, cfg)
    set_seed(seed)
    texts, pairs, labels = train.texts, train.pairs, train.labels
    if task == "embedding" and pairs is not None:  # sentence embeddings: each side is its own example
        texts, pairs, labels = list(dict.fromkeys(texts + pairs)), None, None
    ds = TokenizedExamples(tokenizer, texts, pairs, labels if task in ("classification", "regression") else None,
                           max_length)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    cache, cache_seconds = None, 0.0
    pooler = SentencePooler(interface or ModelInterface("embedding"), hidden_size(teacher.config))
    if can_cache(task, cfg):
        cache, cache_seconds = _teacher_cache(teacher, ds, DistillCollator(tokenizer, None), task, cfg.batch_size,
                                              pooler)
    collate = DistillCollator(tokenizer, cfg.mlm_probability if task == "mlm" else None, cache)
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
    args = TrainingArguments(
        output_dir=str(ckpt), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio, lr_scheduler_type="linear", logging_steps=min(cfg.logging_steps, max(1, total_steps)),
        save_strategy="steps" if save_checkpoints else "no", save_steps=max(10, total_steps // 4), save_total_limit=1, report_to=[],
        remove_unused_columns=False,  # the teacher needs columns the student may not take (token_type_ids)
        seed=seed, data_seed=seed, dataloader_num_workers=0, use_cpu=not cuda,
        fp16=cuda and cfg.precision == "fp16", bf16=cuda and cfg.precision == "bf16",
        ddp_backend=None if cuda or world == 1 else "gloo", disable_tqdm=False, save_safetensors=True,
    )
    trainer = DistillationTrainer.build(
        model=student, args=args, train_dataset=ds, data_collator=collate, teacher=teacher, task=task, dcfg=cfg,
        layer_map=_layer_map(s_layers, t_layers, picked_layers), projection_needed=sw != tw, pooler=pooler)
    use_stage_progress(trainer)  # one bar named after the stage; raw log dicts go to the run's log.txt
    last = resumable_checkpoint(ckpt) if save_checkpoints else None  # validated; damaged ones discarded
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    train_seconds = time.perf_counter() - t0
    if hasattr(student, "distill_projection"):
        del student.distill_projection
    student.eval()
    teacher_seconds = cache_seconds + trainer.teacher_seconds
    wall = train_seconds + cache_seconds
    metrics = {
        "train_examples": len(ds), "steps": result.global_step, "train_loss": round(result.training_loss, 6),
        "train_seconds": round(train_seconds, 2), "teacher_forward_seconds": round(teacher_seconds, 2),
        "teacher_share": round(teacher_seconds / wall, 4) if wall else 0.0, "teacher_cached": cache is not None,
        "resumed_from": Path(last).name if last else None, "world_size": world,
    }
    return DistillOutcome(student, metrics, [h for h in trainer.state.log_history if "loss" in h])


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
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
    plt.close(fig)
    return {"loss_csv": "loss_curve.csv", "loss_png": "loss_curve.png"}
