"""Pipeline stage ``search``: run the candidate branches, measure them on the target, pick one."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import EdgepressError
from compress.search.branches import Branch, run_branches
from compress.model.formats import runtime_of
from compress.search.config import RUNTIME_FORMATS
from compress.search.select import Candidate, choose
from compress.run.stages import StageInputs, StageResult, Variant, tag_names

if TYPE_CHECKING:
    from compress.config import RunConfig
    from compress.search.report import TeacherSummary

log = logging.getLogger("edgepress")


def distinct_files(branches: list[Branch]) -> tuple[dict[str, tuple[Branch, Any, Path]], dict[str, str]]:
    """Candidates by name (``branch/variant``) whose files differ, and for each byte-identical repeat the name
    of the first candidate with that file: two branches can produce one model (a vocabulary size above the
    number of tokens the text uses trims nothing more), which is measured once, not twice."""
    from benchmarks.identity import content_hash

    distinct: dict[str, tuple[Branch, Any, Path]] = {}
    first_of: dict[str, str] = {}
    same_as: dict[str, str] = {}
    for b in branches:
        for v, path in b.variants:
            name = f"{b.name}/{v.name}"
            digest = content_hash(path)
            if digest is not None and digest in first_of:
                same_as[name] = first_of[digest]
                continue
            if digest is not None:
                first_of[digest] = name
            distinct[name] = (b, v, path)
    return distinct, same_as


def measure(cfg: "RunConfig", inputs: StageInputs,
            branches: list[Branch]) -> tuple[dict[str, Any], dict, dict | None, dict[str, str]]:
    """Teacher + every distinct candidate file through the benchmark harness, at the target's batch and device.

    Returns the test-split report (latency and quality), the candidate -> branch map, when the choice
    is made on the eval split a quality-only report on that split (one timed run per model), and the
    candidates left out as byte-identical repeats (name -> the measured candidate with the same file).
    """
    from benchmarks.harness import ModelSpec, benchmark
    from benchmarks.api import eval_set_for, model_specs, remote_options, settings_from_config

    from compress.api import derive

    t = cfg.search.targets
    run_cfg = derive(cfg, bench={"batch_size": t.batch, "sweep_batch_sizes": [],
                                 "max_eval_samples": cfg.search.max_eval_samples,
                                 "device": "cpu" if t.remote else t.device, "targets": [],
                                 "session_memory": False})  # the choice reads latency and quality only
    bench = run_cfg.bench
    settings = settings_from_config(bench, cfg.teacher.max_length, cfg.seed)
    specs = [model_specs(cfg, inputs)[0]]  # the teacher, PyTorch fp32 (the fine-tuned one if upstream)
    distinct, same_as = distinct_files(branches)
    where: dict[str, Branch] = {}
    for name, (b, v, path) in distinct.items():
        specs.append(ModelSpec(name, path, v.format, v.precision, shape_source=b.model_dir, tokenizer=b.tokenizer))
        where[name] = b
    for name, first in same_as.items():
        log.info("search: %s is the same file as %s; measured once", name, first)
    tok = next((b.tokenizer for b in branches if b.tokenizer is not None), None)
    tags = tag_names(cfg, inputs)  # token classification: logits map to the tag names
    from compress.model.interface import interface_of

    pooling = interface_of(specs[0].path, cfg.task)  # foreign files (token outputs only) pool as the teacher does
    report = benchmark(specs, cfg.task, settings, tokenizer_path=str(tok) if tok else None, pooling=pooling,
                       eval_set=eval_set_for(run_cfg, inputs.data, label_names=tags,
                                             cap_field="search.max_eval_samples"),
                       targets=[t.device] if t.remote else [],
                       remote_options=remote_options(cfg.bench), progress=lambda m: log.info("search: %s", m))
    select_report = None
    if cfg.search.select_on == "eval" and cfg.data.test:  # without data.test the "test" rows are the eval rows
        quick = dataclasses.replace(settings, realistic=False, warmup=0, min_runs=1, min_seconds=0.0, rounds=1)
        select_report = benchmark(specs, cfg.task, quick, tokenizer_path=str(tok) if tok else None, pooling=pooling,
                                  eval_set=eval_set_for(run_cfg, inputs.data, split="eval", label_names=tags,
                                                         cap_field="search.max_eval_samples"),
                                  progress=lambda m: log.info("search (eval split): %s", m))
    return report, where, select_report, same_as


def variant_of(b: Branch, name: str) -> Any:
    """The branch's variant a candidate (``branch/variant``) names."""
    return next(v for v, _ in b.variants if f"{b.name}/{v.name}" == name)


def candidates_from(report: dict[str, Any], where: dict[str, Branch], target: str,
                    select_report: dict[str, Any] | None = None, same_as: dict[str, str] | None = None,
                    branches: list[Branch] | None = None) -> list[Candidate]:
    """Candidate rows: latency from the target's entry, quality from the selection split and the test split;
    a byte-identical repeat (``same_as``) is a row of its own, not measured, naming the candidate it repeats."""
    from benchmarks.report_types import model_entries

    local = {e.name: e for e in model_entries(report, "local")}
    chosen_on = {e.name: e for e in model_entries(select_report)} if select_report else local
    at_target = {e.name: e for e in model_entries(report, target)} if target != "local" else local
    out = []
    for name, b in where.items():
        q, sel, lat = local.get(name), chosen_on.get(name), at_target.get(name)
        status = next(("missing" if e is None else e.status for e in (q, sel, lat) if e is None or e.status != "ok"),
                      "ok")
        out.append(Candidate(name=name, path=q.path if q else "", depth=b.depth, prune_ratio=b.prune_ratio,
                             precision=q.precision if q else "fp32", size_mb=(q.size_mb if q else None) or 0.0,
                             p50_ms=lat.p50_ms if lat else None, p90_ms=lat.p90_ms if lat else None,
                             retention=sel.retention if sel else None, value=sel.value if sel else None,
                             test_retention=q.retention if q else None, test_value=q.value if q else None,
                             status=status, head_ratio=b.head_ratio, runtime=runtime_of(variant_of(b, name).format)))
    by_name = {b.name: b for b in branches or []}
    for name, first in (same_as or {}).items():
        b, q = by_name[name.split("/")[0]], local.get(first)
        out.append(Candidate(name=name, path=q.path if q else "", depth=b.depth, prune_ratio=b.prune_ratio,
                             precision=q.precision if q else "fp32", size_mb=(q.size_mb if q else None) or 0.0,
                             p50_ms=None, retention=None, status=f"same file as {first}", head_ratio=b.head_ratio,
                             runtime=runtime_of(variant_of(b, name).format)))
    return out


def teacher_summary(report: dict[str, Any], select_report: dict[str, Any] | None = None) -> "TeacherSummary":
    """The teacher's size, p50 and metric on the selection split (and on test)."""
    from benchmarks.report_types import model_entries
    from compress.search.report import TeacherSummary

    e = next(e for e in model_entries(report) if e.role == "teacher")
    sel = next(x for x in model_entries(select_report) if x.role == "teacher") if select_report else e
    return TeacherSummary(name=e.name, format=e.format, size_mb=e.size_mb, metric=sel.metric, value=sel.value,
                          test_value=e.value, p50_ms=e.p50_ms)


def check_runtimes(cfg: "RunConfig") -> None:
    """Refuse, before any branch runs, a runtime of search.runtimes this machine cannot write or time, with the
    ``pip install`` that fixes it (the format writer's preflight, the runner's unavailable_reason)."""
    from benchmarks.remote import REMOTE_FORMATS
    from benchmarks.runners import skip_reason
    from export.writer import WRITERS

    t = cfg.search.targets
    device = "cpu" if t.remote else t.device  # a remote target's files are loaded (and scored) here first
    for runtime in cfg.search.runtimes:
        fmt = RUNTIME_FORMATS[runtime]
        if fmt == "onnx":  # ONNX files are what every search measured before runtimes existed: unchanged
            continue
        if WRITERS[fmt].preflight is not None:
            try:
                WRITERS[fmt].preflight()
            except EdgepressError as exc:
                raise EdgepressError(f"search.runtimes: {runtime}: {exc}") from None
        reason = skip_reason(fmt, device)
        if reason:
            raise EdgepressError(f"search.runtimes: {runtime} cannot be timed on {device}: {reason}")
        if t.remote and fmt not in REMOTE_FORMATS:
            raise EdgepressError(f"search.runtimes: {runtime} cannot be timed on {t.device}: remote targets run "
                                 f"{', '.join(REMOTE_FORMATS)} files; drop {runtime} or measure on this machine")


def for_target(cfg: "RunConfig") -> tuple["RunConfig", dict[str, Any] | None]:
    """For an ssh:// / adb:// target: probe the device once and quantize every candidate with its CPU's INT8 recipe.

    Returns the config the branches run with (``quantize.target_cpu`` set, unless the user set it) and the
    probed device record (None for cpu/cuda, which are this machine).
    """
    from benchmarks.remote import probe_device
    from benchmarks.api import remote_options
    from compress.quantize.config import TargetCpu

    t = cfg.search.targets
    if not t.remote:
        return cfg, None
    info = probe_device(t.device, remote_options(cfg.bench))
    log.info("search: %s is %s (%s; ISA %s)%s", t.device, info.get("cpu"), info.get("arch"),
             ", ".join(info.get("isa") or []), " — emulated" if info.get("emulated") else "")
    if info.get("emulated") and t.latency_budget_ms is not None:
        raise EdgepressError(f"search.targets.latency_budget_ms: {t.device} is emulated ({info.get('emulator')}), so "
                             f"its milliseconds are not device time; drop the budget (the fastest candidate above the "
                             f"floor is chosen) or measure on the real device")
    if cfg.quantize.target_cpu is not None:
        return cfg, info
    cpu = TargetCpu(source=t.device, arch=str(info.get("arch") or ""), model=str(info.get("cpu") or ""),
                    flags=list(info.get("isa") or []))
    from compress.api import derive

    return derive(cfg, quantize={"target_cpu": cpu.model_dump(mode="json")}), info


def winner_variant(w: Candidate, b: Branch, out_dir: Path) -> Variant:
    """The winner as the bench stage measures it: winner/model.onnx for ONNX Runtime, else its file in its own
    runtime's format, read from the branch export that winner/export links (not copied again)."""
    name = f"search-winner ({w.name})"
    if w.runtime == "onnxruntime":
        return Variant(name, "onnx", "winner/model.onnx", w.precision)
    v = variant_of(b, w.name)
    if not (out_dir / "winner" / "export" / v.path).exists():
        raise EdgepressError(f"search: the winner's {w.runtime} file '{v.path}' is not in its branch export "
                             f"'{b.export_dir}'; rerun with --force search")
    return Variant(name, v.format, f"winner/export/{v.path}", w.precision)


def same_model_variants(cfg: "RunConfig", cands: list[Candidate], w: Candidate, b: Branch,
                        out_dir: Path) -> list[Variant]:
    """The winner's model (its branch) in every other listed runtime, so the bench stage times one model in each:
    per runtime the branch's file the search's own rule picks among that runtime's files (the fastest above the
    floor on the selection split, within the size budget), else that runtime's fastest measured file."""
    t = cfg.search.targets
    out = []
    for runtime in cfg.search.runtimes:
        if runtime == w.runtime:
            continue
        mine = [c for c in cands if c.runtime == runtime and c.name.split("/")[0] == b.name and c.measured]
        if not mine:
            continue
        pick = choose(mine, t.retention_floor, t.latency_budget_ms, t.max_size_mb, cfg.search.tie_margin).winner
        pick = pick or min(mine, key=lambda c: c.p50_ms or float("inf"))
        src = Path(pick.path)
        if b.export_dir is not None and src.is_relative_to(b.export_dir):
            rel = f"winner/export/{src.relative_to(b.export_dir)}"
        else:  # an ONNX Runtime file of the branch's quantize stage
            (out_dir / "winner" / runtime).mkdir(parents=True, exist_ok=True)
            rel = f"winner/{runtime}/{src.name}"
            from compress.core.fsio import copy_file

            copy_file(src, out_dir / rel)
        out.append(Variant(f"search-winner-{runtime} ({pick.name})", RUNTIME_FORMATS[runtime], rel, pick.precision))
    return out


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Branches -> one benchmark of all candidates -> Pareto front and winner -> winner/ + search.md."""
    from compress.quantize.api import recipe_cpu
    from compress.quantize.cpu import detect_cpu, recommend_int8
    from compress.search import report as search_report

    t = cfg.search.targets
    check_runtimes(cfg)
    cfg, probed = for_target(cfg)
    recipe_for, recipe_source = recipe_cpu(cfg.quantize, detect_cpu)
    int8 = recommend_int8(recipe_for)
    recipe = {"cpu": recipe_for.to_dict(), "source": recipe_source, **int8.to_dict()}
    branches = run_branches(cfg, inputs, progress=lambda m: log.info("search: %s", m))
    report, where, select_report, same_as = measure(cfg, inputs, branches)
    target = t.device if t.remote else "local"
    cands = candidates_from(report, where, target, select_report, same_as, branches)
    choice = choose(cands, t.retention_floor, t.latency_budget_ms, t.max_size_mb, cfg.search.tie_margin)
    teacher = teacher_summary(report, select_report)
    if t.remote:  # the teacher (PyTorch) runs here only: its ms and the target's never make a ratio
        teacher = dataclasses.replace(teacher, p50_ms_local=teacher.p50_ms, p50_ms=None)
    targets = t.model_dump(mode="json")
    device = report["devices"].get(target) or report["devices"].get("local") or probed
    device_s = (f"{device.get('cpu')} ({device.get('arch')}, {device.get('cores')} cores, "
                f"{', '.join(device.get('isa') or [])})" if device else target)
    if t.remote:
        device_s = f"{target}: {device_s}"
    if device and device.get("emulated"):
        device_s += (f" — **emulated** ({device.get('emulator')}): p50 columns are emulated ms, comparable only "
                     f"between these candidates")
    device_s += (f". INT8 recipe chosen for {recipe_for.isa} ({recipe_source}): weights {int8.weight_type}, "
                 f"activations {int8.activation_type}, reduce_range {int8.reduce_range}")
    split = cfg.search.select_on if cfg.data.test else "eval (no separate test split)"
    outputs = search_report.write(out_dir, search_report.SearchReport.of(cands, choice, teacher, targets,
                                                                         str(device_s), split))
    (out_dir / "measurements.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    outputs["measurements"] = "measurements.json"
    if select_report is not None:
        (out_dir / "measurements_eval.json").write_text(json.dumps(select_report, indent=2, default=str) + "\n")
        outputs["measurements_eval"] = "measurements_eval.json"
    metrics: dict[str, Any] = {"candidates": len(cands), "select_on": cfg.search.select_on,
                               "meets_targets": choice.meets_targets, "int8_recipe": recipe,
                               "target_device": probed,
                               "reason": choice.reason, "teacher": teacher.to_dict()}
    variants = []
    if choice.winner is not None:
        w = choice.winner
        b = where[w.name]
        (out_dir / "winner").mkdir()
        # the ONNX folders of final/ ship the winner when ONNX Runtime runs it, else its branch's fp32 ONNX file
        onnx_src = w.path if w.runtime == "onnxruntime" or b.export_dir is None else b.export_dir / "model.onnx"
        shutil.copy2(onnx_src, out_dir / "winner" / "model.onnx")
        if b.tokenizer is not None:
            shutil.copytree(b.tokenizer, out_dir / "winner" / "tokenizer")
            outputs["tokenizer"] = "winner/tokenizer"
        if b.model_dir is not None:  # the winner's PyTorch weights: what the final package ships beside the ONNX
            shutil.copytree(b.model_dir, out_dir / "winner" / "model")
            outputs["winner_model"] = "winner/model"
        if b.export_dir is not None:  # its fp32 export (files, parity, stage.json), reused by the package stage
            from compress.core.fsio import link_tree

            link_tree(b.export_dir, out_dir / "winner" / "export")
            outputs["winner_export"] = "winner/export"
        outputs["onnx"] = "winner/model.onnx"
        metrics["winner"] = w.to_dict()
        variants.append(winner_variant(w, b, out_dir))
        variants += same_model_variants(cfg, cands, w, b, out_dir)
        if not choice.meets_targets:
            log.warning("search: %s", choice.reason)
    return StageResult(outputs=outputs, metrics=metrics, variants=variants)
