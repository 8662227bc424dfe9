"""Pipeline stage ``bench``: measure the teacher and every upstream variant; write report.json/md/csv/png."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.api import eval_set_for, model_specs, remote_options, settings_from_config
from benchmarks.harness import ModelSpec, benchmark
from compress.run.stages import StageInputs, StageResult, tag_names

if TYPE_CHECKING:
    from compress.config import RunConfig


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Measure quality and latency of the teacher and all variants; report into out_dir (the pipeline copies the
    report beside the stage folders, runs/<name>/report.json)."""
    from benchmarks.report import write_report
    from compress.tasks import task_spec

    specs = model_specs(cfg, inputs)
    tok = inputs.latest("tokenizer") or specs[0].path
    if cfg.bench.baselines:
        from benchmarks.baseline import build_baselines

        built = build_baselines(list(cfg.bench.baselines), specs[0].path, cfg.task, out_dir / "baselines",
                                calibration=calibration_text(cfg, inputs), max_length=cfg.teacher.max_length)
        for name, path in built.items():
            specs.append(ModelSpec(name, path, "onnx", "int8" if "int8" in name else "fp32", role="baseline",
                                   tokenizer=Path(specs[0].path)))  # the teacher's vocabulary, not a trimmed one
    eval_set = eval_set_for(cfg, inputs.data, label_names=tag_names(cfg, inputs))
    settings = settings_from_config(cfg.bench, cfg.teacher.max_length, cfg.seed)
    from compress.model.interface import interface_of

    teacher_iface = interface_of(specs[0].path, cfg.task)
    report = benchmark(specs, cfg.task, settings, tokenizer_path=str(tok), eval_set=eval_set,
                       targets=cfg.bench.targets, remote_options=remote_options(cfg.bench), pooling=teacher_iface)
    report["teacher_model"] = teacher_name(cfg, inputs)
    if task_spec(cfg.task).label_kind == "classes":  # class names as the teacher (and every variant) knows them
        id2label = teacher_iface.id2label
        report["id2label"] = {str(k): v for k, v in sorted((id2label or {}).items())} or None
    paths = write_report(report, out_dir)
    return StageResult(outputs={k: p.name for k, p in paths.items()}, metrics=summary_metrics(report))


def teacher_name(cfg: "RunConfig", inputs: StageInputs) -> str:
    """The teacher as report.md names it: its hub id (a packaged model's is the one it copies), else its folder's
    name; marked fine-tuned when an upstream finetune stage made it."""
    from compress.package.card import teacher_of

    name = teacher_of(cfg.teacher.model).reference
    return f"{name} (fine-tuned)" if inputs.latest("teacher") is not None else name


def calibration_text(cfg: "RunConfig", inputs: StageInputs) -> tuple[list[str], list[str] | None] | None:
    """The training split's sentences (and pairs) for the static Optimum baseline; None when it is not asked for."""
    if "optimum-int8-static" not in cfg.bench.baselines:
        return None
    from compress.tasks import task_spec

    if not task_spec(cfg.task).static_calibration:
        return None  # build_baselines names the tasks
    train = inputs.data.splits().train
    return list(train.texts), None if train.pairs is None else list(train.pairs)


def summary_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Per model: status, size, p50/p90, metric value and retention (what stage.json keeps), read through the
    report's typed entries (benchmarks/report_types.py)."""
    from benchmarks.report_types import DataInfo, model_entries

    out: dict[str, Any] = {"metric": DataInfo.from_dict(report.get("data")).metric}
    for e, raw in zip(model_entries(report), report["models"]):
        key = e.name if e.target == "local" else f"{e.name}@{e.target}"
        reason = raw.get("reason")  # why a model failed or was skipped: not a ModelEntry field
        out[key] = {"status": e.status, "role": e.role, "format": e.format, "size_mb": e.size_mb, "p50_ms": e.p50_ms,
                    "p90_ms": e.p90_ms, "value": e.value, "retention": e.retention,
                    **({"reason": reason} if reason else {})}
    return out
