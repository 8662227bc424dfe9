"""Pipeline stage ``prune``: cut heads / FFN neurons / layers of the upstream model, optionally recover."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.run.stages import StageInputs, StageResult, Variant

if TYPE_CHECKING:
    from compress.config import RunConfig


def recovery_text(cfg: "RunConfig", splits: Any, extra: list[Any]) -> Any:
    """With prune.recovery.unlabeled, the distill stage's text (data.train + the data.unlabeled corpora ``extra``)
    as a memory-mapped dataset; else None (recovery runs on data.train)."""
    from compress.data.rows import distillation_dataset
    from compress.core.errors import ConfigError

    rcfg = cfg.prune.recovery
    if not (rcfg.enabled and rcfg.unlabeled):
        return None
    from compress.tasks import TASKS, task_spec

    if not task_spec(cfg.task).unlabeled_text:
        usable = ", ".join(n for n, s in TASKS.items() if s.unlabeled_text)
        raise ConfigError(f"prune.recovery.unlabeled is for {usable} (the tasks that distill "
                          f"on unlabelled text), not {cfg.task}: set it to false")
    return distillation_dataset(cfg.data, cfg.task, splits.train, extra)


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Prune ``inputs.model`` per ``cfg.prune``; write out_dir/model (save_pretrained + tokenizer)."""
    from compress.model.interface import derived_interface, interface_of, save_model
    from compress.model.loading import load_model, load_tokenizer
    from compress.prune.api import prune_model

    src = inputs.require("model", "prune")
    pcfg = cfg.prune
    model = load_model(str(src), cfg.task)
    tokenizer = load_tokenizer(str(src))
    iface = interface_of(src, cfg.task)
    # calibration, recovery and quality before/after
    splits = inputs.data.splits()
    model, report = prune_model(
        model, tokenizer, pcfg, splits.train, cfg.task, recovery_train=recovery_text(cfg, splits, inputs.data.unlabeled()),
        eval_data=splits.eval, work_dir=out_dir, seed=cfg.seed, interface=iface)
    dest = out_dir / "model"
    pruned_iface = derived_interface(iface, model, tokenizer, splits.eval, iface.max_seq_length)  # its windows downstream
    save_model(model, tokenizer, pruned_iface, dest)
    metrics = report.to_dict()
    if pruned_iface.null_threshold is not None:
        metrics["null_threshold"] = pruned_iface.null_threshold
    (out_dir / "prune_report.json").write_text(json.dumps(metrics, indent=2, default=float))
    if (out_dir / "recovery").is_dir() and not any((out_dir / "recovery").iterdir()):
        (out_dir / "recovery").rmdir()
    return StageResult(outputs={"model": "model"}, metrics=metrics,
                       variants=[Variant("student-pruned", "pytorch", "model")])
