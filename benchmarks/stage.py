"""Pipeline stage ``bench``: measure the teacher and every upstream variant; write report.json/md/csv/png."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.runners.base import Threads, available_cores
from compress.stages import StageInputs, StageResult, teacher_labels, teacher_source

if TYPE_CHECKING:
    from benchmarks.config import BenchConfig
    from compress.config import RunConfig


def settings_from_config(bench: "BenchConfig", max_length: int, seed: int) -> BenchSettings:
    """BenchSettings for the stage (and the CLI's config path) from the bench section."""
    batches = [bench.batch_size] + [b for b in bench.sweep_batch_sizes if b != bench.batch_size]
    return BenchSettings(batch_sizes=batches, seq_lens=list(bench.seq_lens), realistic=bench.realistic,
                         warmup=bench.warmup, min_runs=bench.min_runs, min_seconds=bench.min_seconds,
                         threads=Threads(bench.threads or available_cores(), bench.inter_threads), device=bench.device,
                         max_length=max_length, seed=seed)


def remote_options(bench: "BenchConfig") -> Any:
    """RemoteOptions from the bench section."""
    from benchmarks.remote import RemoteOptions

    return RemoteOptions(known_hosts=bench.known_hosts, host_key=bench.host_key, identity=bench.ssh_identity,
                         python=bench.remote_python, remote_dir=bench.remote_dir)


def eval_set_for(cfg: "RunConfig", split: str = "test", labels: dict | None = None) -> EvalSet:
    """The ``split`` (test or eval) capped at bench.max_eval_samples; STS scores are read for embedding pairs.

    ``labels`` (``{"label2id": ...}``) maps class names in the data to the teacher's ids.
    """
    from compress.data import load_splits

    task = cfg.task
    # embedding + pairs + a score column is STS: load_text_data only parses labels for classification /
    # regression, so read the same split as regression to get the gold scores (split indices don't depend on task)
    if task == "embedding" and cfg.data.text_pair_column and cfg.data.label_column:
        splits = load_splits(cfg.data, "regression", cfg.seed)
    else:
        splits = load_splits(cfg.data, task if task != "mlm" else "embedding", cfg.seed, **(labels or {}))
    return EvalSet.from_text_data(getattr(splits, split).head(cfg.bench.max_eval_samples))


def model_specs(cfg: "RunConfig", inputs: StageInputs) -> list[ModelSpec]:
    """The teacher (PyTorch fp32) first, then every upstream variant."""
    from compress.models import resolve_model_path

    specs = [ModelSpec("teacher", Path(resolve_model_path(teacher_source(cfg, inputs))), "pytorch", "fp32", "teacher")]
    for variant, path in inputs.variants():
        specs.append(ModelSpec(variant.name, path, variant.format, variant.precision))
    return specs


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Measure quality and latency of the teacher and all variants; report into out_dir and the run folder."""
    from benchmarks.report import write_report

    specs = model_specs(cfg, inputs)
    tok = inputs.latest("tokenizer") or specs[0].path
    if cfg.bench.baselines:
        from benchmarks.baseline import build_baselines

        built = build_baselines(list(cfg.bench.baselines), specs[0].path, cfg.task, out_dir / "baselines")
        for name, path in built.items():
            specs.append(ModelSpec(name, path, "onnx", "int8" if "int8" in name else "fp32", role="baseline"))
    eval_set = eval_set_for(cfg, labels=teacher_labels(cfg, inputs))
    settings = settings_from_config(cfg.bench, cfg.teacher.max_length, cfg.seed)
    from compress.interface import interface_of

    teacher_iface = interface_of(specs[0].path, cfg.task)
    report = benchmark(specs, cfg.task, settings, tokenizer_path=str(tok), eval_set=eval_set,
                       targets=cfg.bench.targets, remote_options=remote_options(cfg.bench), pooling=teacher_iface)
    if cfg.task == "classification":  # class names as the teacher (and every variant) knows them
        id2label = teacher_iface.id2label
        report["id2label"] = {str(k): v for k, v in sorted((id2label or {}).items())} or None
    paths = write_report(report, out_dir)
    inputs.run_dir.mkdir(parents=True, exist_ok=True)
    for key in ("json", "md", "png"):
        if key in paths:
            shutil.copy2(paths[key], Path(inputs.run_dir) / paths[key].name)
    return StageResult(outputs={k: p.name for k, p in paths.items()}, metrics=summary_metrics(report))


def summary_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Per model: status, size, p50/p90, metric value and retention (what stage.json keeps)."""
    out: dict[str, Any] = {"metric": (report.get("data") or {}).get("metric")}
    for e in report["models"]:
        key = e["name"] if e["target"] == "local" else f"{e['name']}@{e['target']}"
        lat = e.get("latency_ms") or {}
        q = e.get("quality") or {}
        out[key] = {"status": e["status"], "format": e["format"], "size_mb": e.get("size_mb"),
                    "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "value": q.get("value"),
                    "retention": e.get("retention"), **({"reason": e["reason"]} if e.get("reason") else {})}
    return out
