"""Python API of structural pruning: ``prune_model(model, tokenizer, cfg, ...) -> (model, report)``."""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import EdgepressError
from compress.prune import arch
from compress.prune.config import PruneConfig, RecoveryConfig
from compress.tasks import task_spec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from compress.data.rows import TextData
    from compress.distill.config import LossWeights
    from compress.model.interface import ModelInterface

MAC_SEQ_LEN = 128  # sequence length at which MACs are counted (batch 1)


@dataclass
class PruneReport:
    """What was removed and what it cost: sizes, MACs, shapes per layer, quality and recovery."""

    importance: str
    scope: str
    head_ratio: float
    ffn_ratio: float
    params_before: int
    params_after: int
    encoder_params_before: int
    encoder_params_after: int
    macs_before: int
    macs_after: int
    heads_before: list[int]
    heads_after: list[int]
    ffn_before: list[int]
    ffn_after: list[int]
    dropped_layers: list[int]
    layer_scores: list[float] | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    recovery: dict[str, Any] = field(default_factory=dict)
    prune_seconds: float = 0.0
    max_length: int | None = None

    @property
    def encoder_params_removed(self) -> float:
        return 1 - self.encoder_params_after / self.encoder_params_before

    @property
    def macs_removed(self) -> float:
        return 1 - self.macs_after / self.macs_before

    def to_dict(self) -> dict[str, Any]:
        """Flat-ish metrics for stage.json."""
        d = asdict(self)
        d["encoder_params_removed"] = round(self.encoder_params_removed, 6)
        d["macs_removed"] = round(self.macs_removed, 6)
        d["mac_seq_len"] = MAC_SEQ_LEN
        return d


def encoder_params(model: "PreTrainedModel") -> int:
    """Parameters of the encoder layers (what pruning can shrink; embeddings and heads excluded)."""
    return sum(p.numel() for p in arch.layers(model).parameters())


def count_macs(model: "PreTrainedModel") -> tuple[int, int]:
    """(MACs, params) of one forward at batch 1, sequence MAC_SEQ_LEN, by torch_pruning.utils.count_ops_and_params."""
    import torch_pruning as tp

    from compress.prune.core import example_inputs

    macs, params = tp.utils.count_ops_and_params(model, example_inputs(model, MAC_SEQ_LEN))
    return int(macs), int(params)


def default_recovery_loss(task: str, has_labels: bool) -> "LossWeights":
    """Loss mix for recovery when the config gives none (all terms against the unpruned model)."""
    from compress.distill.config import LossWeights

    weights = dict(task_spec(task).recovery_loss)
    if not has_labels:
        weights.pop("hard", None)  # the gold-label term needs labels
    return LossWeights(**weights)


def _first_rows(train: "TextData | Any", n: int | None) -> "TextData | Any":
    """The first ``n`` rows of a TextData or a ``datasets.Dataset`` (the distill stage's text), all if None."""
    if hasattr(train, "head"):
        return train.head(n)
    return train if n is None or n >= len(train) else train.select(range(n))


def _has_labels(train: "TextData | Any") -> bool:
    """Whether the recovery rows carry gold labels (TextData.labels, or a Dataset's "labels" column)."""
    cols = getattr(train, "column_names", None)
    return "labels" in cols if cols is not None else train.labels is not None


def recover(teacher: "PreTrainedModel", student: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase",
            train: "TextData", eval: "TextData | None", task: str, rcfg: RecoveryConfig, max_length: int,
            work_dir: Path, seed: int, kept_layers: list[int],
            interface: "ModelInterface | None" = None) -> dict[str, Any]:
    """Distill the pruned ``student`` from the unpruned ``teacher`` with the distillation engine."""
    from compress.distill.config import DistillConfig
    from compress.distill.engine import distill_model
    from compress.tasks import training_features

    train = _first_rows(train, rcfg.max_train_samples)
    features = training_features(task, tokenizer, teacher.config, train, max_length)  # NER / QA rows
    loss = rcfg.loss or default_recovery_loss(task, _has_labels(train))
    dcfg = DistillConfig(epochs=rcfg.epochs, max_steps=rcfg.max_steps, batch_size=rcfg.batch_size,
                         learning_rate=rcfg.learning_rate, warmup_ratio=rcfg.warmup_ratio, loss=loss,
                         keep_best=rcfg.keep_best and eval is not None and len(eval) > 0)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        outcome = distill_model(teacher, student, tokenizer, train if features is None else features, eval, task,
                                dcfg, max_length, work_dir, seed, checkpoint_dir=work_dir / "checkpoints", picked_layers=kept_layers,
                                interface=interface)
    finally:
        shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)  # resumable only within one run
    if outcome.model is not student:
        student.load_state_dict(outcome.model.state_dict())
    return dict(outcome.metrics, loss={k: v for k, v in loss.model_dump().items() if v})


def prune_max_length(cfg: PruneConfig, interface: "ModelInterface | None") -> int:
    """prune.max_length, else the model's own max length (a QA model's windows), else 128."""
    if cfg.max_length is not None:
        return cfg.max_length
    return interface.max_seq_length if interface is not None and interface.max_seq_length else 128


def _quality(model, tokenizer, data, task, max_length, reference, interface=None) -> dict[str, Any]:
    from compress.distill.evaluate import task_quality

    return task_quality(model, tokenizer, data, task, max_length, reference, interface)


def prune_model(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", cfg: PruneConfig,
                calibration: "TextData | None" = None, task: str = "embedding", *,
                recovery_train: "TextData | None" = None, eval_data: "TextData | None" = None,
                work_dir: Path | None = None, seed: int = 42,
                interface: "ModelInterface | None" = None) -> tuple["PreTrainedModel", PruneReport]:
    """Remove heads, FFN neurons and layers from ``model`` in place; optionally recover; return it and a report.

    ``calibration`` feeds taylor/gradient importance and layer choice; ``recovery_train`` the recovery
    distillation (defaults to ``calibration``); ``eval_data`` the quality before/after (task_quality).
    """
    import torch

    from compress.prune import core, importance, plan as planning

    t0 = time.perf_counter()
    # ---- every check before any work
    a = arch.detect(model)
    shapes = core.shapes_of(model)
    if not cfg.removes_anything:
        raise EdgepressError("prune: nothing to remove; set prune.head_ratio/ffn_ratio, prune.target+amount, "
                             "prune.drop_layers or prune.num_drop_layers")
    if cfg.needs_data and (calibration is None or len(calibration) == 0):
        raise EdgepressError(f"prune.importance={cfg.importance} / num_drop_layers={cfg.num_drop_layers} needs "
                             "calibration text; pass calibration data (the stage uses data.train)")
    recovery_train = recovery_train if recovery_train is not None else calibration
    if cfg.recovery.enabled and (recovery_train is None or len(recovery_train) == 0):
        raise EdgepressError("prune.recovery.enabled needs training text; pass recovery data (the stage uses data.train)")
    scorer = importance.importance_spec(cfg.importance)
    if task_spec(task).outputs == "tokens" and scorer.needs_data and tokenizer.mask_token_id is None:
        raise EdgepressError("importance taylor/gradient for task mlm needs a tokenizer with a mask token")
    dropped = sorted(cfg.drop_layers or [])
    placeholder = dropped or list(range(cfg.num_drop_layers))
    planning.make_plan(shapes, cfg, placeholder)  # raises on impossible targets
    importance.check_groups(core.build_graph(model), model)  # raises when the graph couples unexpected layers

    max_length = prune_max_length(cfg, interface)
    teacher = copy.deepcopy(model).eval() if cfg.recovery.enabled else None
    model.eval()
    params_before, enc_before = sum(p.numel() for p in model.parameters()), encoder_params(model)
    macs_before, _ = count_macs(model)
    heads_before, ffn_before = list(shapes.heads), list(shapes.ffn)
    quality: dict[str, Any] = {}
    reference = None
    if eval_data is not None and len(eval_data):
        from compress.distill.evaluate import encode
        if not task_spec(task).token_level:  # the fidelity reference of sentence outputs (token tasks score F1 on labels)
            reference = encode(model, tokenizer, eval_data.texts, task, max_length, interface=interface)
        quality["unpruned"] = _quality(model, tokenizer, eval_data, task, max_length, reference, interface)

    batches = None
    if cfg.needs_data:
        batches = importance.task_calibration_batches(
            tokenizer, calibration, task, model.config, cfg.calibration_batches, cfg.calibration_batch_size,
            max_length)
    l_scores = None
    if cfg.num_drop_layers:
        l_scores = importance.layer_scores(model, batches, interface)
        dropped = sorted(sorted(range(len(l_scores)), key=lambda i: l_scores[i])[:cfg.num_drop_layers])
    the_plan = planning.make_plan(shapes, cfg, dropped)
    kept = arch.drop_layers(model, dropped) if dropped else list(range(len(shapes.heads)))

    dg = core.build_graph(model)
    scores = scorer.score(importance.ImportanceInputs(dg, model, batches, task, tokenizer, seed, interface))
    heads_rm, ffn_rm = core.select(scores, the_plan, cfg.min_heads)
    core.cut(dg, model, heads_rm, ffn_rm)
    model.eval()
    with torch.inference_mode():
        model(**core.example_inputs(model))  # the cut model must still run
    prune_seconds = time.perf_counter() - t0
    if eval_data is not None and len(eval_data):
        quality["pruned"] = _quality(model, tokenizer, eval_data, task, max_length, reference, interface)

    rec: dict[str, Any] = {}
    if cfg.recovery.enabled:
        import tempfile

        wd = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="edgepress-recover-"))
        pruned_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        rec = recover(teacher, model, tokenizer, recovery_train, eval_data, task, cfg.recovery, max_length,
                      wd / "recovery", seed, kept, interface)
        model.eval()
        if eval_data is not None and len(eval_data):
            quality["recovered"] = _quality(model, tokenizer, eval_data, task, max_length, reference, interface)
            worse = quality["recovered"]["value"] < quality["pruned"]["value"]
            rec["kept"], rec["recovered_eval"] = "recovered", quality["recovered"]["value"]  # kept even if reverted
            if worse and cfg.recovery.revert_if_worse:
                model.load_state_dict(pruned_state)  # recovery lowered the eval metric: keep the pruned weights
                rec["kept"] = "pruned (recovery lowered the eval metric)"
                quality["recovered"] = dict(quality["pruned"])
    if "unpruned" in quality:
        base = quality["unpruned"]["value"]
        final = quality.get("recovered", quality["pruned"])["value"]
        quality["retention"] = final / base if base == base and base else float("nan")

    macs_after, _ = count_macs(model)
    report = PruneReport(
        importance=cfg.importance, scope=cfg.scope, head_ratio=the_plan.head_ratio, ffn_ratio=the_plan.ffn_ratio,
        params_before=params_before, params_after=sum(p.numel() for p in model.parameters()),
        encoder_params_before=enc_before, encoder_params_after=encoder_params(model),
        macs_before=macs_before, macs_after=macs_after, heads_before=heads_before,
        heads_after=arch.heads_per_layer(model), ffn_before=ffn_before, ffn_after=arch.ffn_per_layer(model),
        dropped_layers=dropped, layer_scores=l_scores, quality=quality, recovery=rec,
        prune_seconds=round(prune_seconds, 3), max_length=max_length,
    )
    return model, report
