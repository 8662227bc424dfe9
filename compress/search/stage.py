"""Pipeline stage ``search``: run the candidate branches, measure them on the target, pick one."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.search.branches import Branch, run_branches
from compress.search.select import Candidate, choose
from compress.stages import StageInputs, StageResult, Variant

if TYPE_CHECKING:
    from compress.config import RunConfig

log = logging.getLogger("edgepress")


def measure(cfg: "RunConfig", inputs: StageInputs, branches: list[Branch]) -> tuple[dict[str, Any], dict, dict | None]:
    """Teacher + every candidate through the benchmark harness, at the target's batch and device.

    Returns the test-split report (latency and quality), the candidate -> branch map and, when the choice
    is made on the eval split, a quality-only report on that split (one timed run per model).
    """
    from benchmarks.harness import ModelSpec, benchmark
    from benchmarks.stage import eval_set_for, model_specs, remote_options, settings_from_config

    t = cfg.search.targets
    bench = cfg.bench.model_copy(update={"batch_size": t.batch, "sweep_batch_sizes": [],
                                         "max_eval_samples": cfg.search.max_eval_samples,
                                         "device": "cpu" if t.remote else t.device, "targets": []})
    settings = settings_from_config(bench, cfg.teacher.max_length, cfg.seed)
    specs = [model_specs(cfg, inputs)[0]]  # the teacher, PyTorch fp32 (the fine-tuned one if upstream)
    where: dict[str, Branch] = {}
    for b in branches:
        for v, path in b.variants:
            name = f"{b.name}/{v.name}"
            specs.append(ModelSpec(name, path, v.format, v.precision))
            where[name] = b
    tok = next((b.tokenizer for b in branches if b.tokenizer is not None), None)
    run_cfg = cfg.model_copy(update={"bench": bench})
    report = benchmark(specs, cfg.task, settings, tokenizer_path=str(tok) if tok else None,
                       eval_set=eval_set_for(run_cfg), targets=[t.device] if t.remote else [],
                       remote_options=remote_options(cfg.bench), progress=lambda m: log.info("search: %s", m))
    select_report = None
    if cfg.search.select_on == "eval" and cfg.data.test:  # without data.test the "test" rows are the eval rows
        quick = dataclasses.replace(settings, realistic=False, warmup=0, min_runs=1, min_seconds=0.0)
        select_report = benchmark(specs, cfg.task, quick, tokenizer_path=str(tok) if tok else None,
                                  eval_set=eval_set_for(run_cfg, split="eval"),
                                  progress=lambda m: log.info("search (eval split): %s", m))
    return report, where, select_report


def candidates_from(report: dict[str, Any], where: dict[str, Branch], target: str,
                    select_report: dict[str, Any] | None = None) -> list[Candidate]:
    """Candidate rows: latency from the target's entry, quality from the selection split and the test split."""
    local = {e["name"]: e for e in report["models"] if e["target"] == "local"}
    chosen_on = {e["name"]: e for e in select_report["models"]} if select_report else local
    at_target = {e["name"]: e for e in report["models"] if e["target"] == target} if target != "local" else local
    out = []
    for name, b in where.items():
        q, sel, lat = local.get(name, {}), chosen_on.get(name, {}), at_target.get(name, {})
        status = next((e.get("status", "missing") for e in (q, sel, lat) if e.get("status") != "ok"), "ok")
        lat_ms = lat.get("latency_ms") or {}
        out.append(Candidate(name=name, path=q.get("path", ""), depth=b.depth, prune_ratio=b.prune_ratio,
                             precision=q.get("precision", "fp32"), size_mb=q.get("size_mb") or 0.0,
                             p50_ms=lat_ms.get("p50"), p90_ms=lat_ms.get("p90"), retention=sel.get("retention"),
                             value=(sel.get("quality") or {}).get("value"), test_retention=q.get("retention"),
                             test_value=(q.get("quality") or {}).get("value"), status=status))
    return out


def teacher_summary(report: dict[str, Any], select_report: dict[str, Any] | None = None) -> dict[str, Any]:
    """The teacher's size, p50 and metric on the selection split (and on test)."""
    e = next(e for e in report["models"] if e["role"] == "teacher")
    sel = next(x for x in select_report["models"] if x["role"] == "teacher") if select_report else e
    q, t = sel.get("quality") or {}, e.get("quality") or {}
    return {"name": e["name"], "format": e["format"], "size_mb": e.get("size_mb"), "metric": q.get("metric"),
            "value": q.get("value"), "test_value": t.get("value"), "p50_ms": (e.get("latency_ms") or {}).get("p50")}


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Branches -> one benchmark of all candidates -> Pareto front and winner -> winner/ + search.md."""
    from compress.search import report as search_report

    t = cfg.search.targets
    branches = run_branches(cfg, inputs, progress=lambda m: log.info("search: %s", m))
    report, where, select_report = measure(cfg, inputs, branches)
    target = t.device if t.remote else "local"
    cands = candidates_from(report, where, target, select_report)
    choice = choose(cands, t.retention_floor, t.latency_budget_ms, t.max_size_mb)
    teacher = teacher_summary(report, select_report)
    targets = t.model_dump(mode="json")
    device = report["devices"].get(target) or report["devices"].get("local")
    device_s = (f"{device.get('cpu')} ({device.get('arch')}, {device.get('cores')} cores, "
                f"{', '.join(device.get('isa') or [])})" if device else target)
    split = cfg.search.select_on if cfg.data.test else "eval (no separate test split)"
    outputs = search_report.write(out_dir, cands, choice, teacher, targets, str(device_s), split)
    (out_dir / "measurements.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    outputs["measurements"] = "measurements.json"
    if select_report is not None:
        (out_dir / "measurements_eval.json").write_text(json.dumps(select_report, indent=2, default=str) + "\n")
        outputs["measurements_eval"] = "measurements_eval.json"
    metrics: dict[str, Any] = {"candidates": len(cands), "select_on": cfg.search.select_on,
                               "meets_targets": choice.meets_targets,
                               "reason": choice.reason, "teacher": teacher}
    variants = []
    if choice.winner is not None:
        w = choice.winner
        b = where[w.name]
        (out_dir / "winner").mkdir()
        shutil.copy2(w.path, out_dir / "winner" / "model.onnx")
        if b.tokenizer is not None:
            shutil.copytree(b.tokenizer, out_dir / "winner" / "tokenizer")
            outputs["tokenizer"] = "winner/tokenizer"
        outputs["onnx"] = "winner/model.onnx"
        metrics["winner"] = w.to_dict()
        variants.append(Variant(f"search-winner ({w.name})", "onnx", "winner/model.onnx", w.precision))
        if not choice.meets_targets:
            log.warning("search: %s", choice.reason)
    return StageResult(outputs=outputs, metrics=metrics, variants=variants)
