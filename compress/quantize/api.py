"""Python API of the quantization step (the CLI and the pipeline stage call this)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import DataError, EdgepressError
from compress.quantize.config import QuantizeConfig
from compress.quantize.methods import CALIBRATION_FEEDS, METHODS, PLAIN_GRAPH, PYTORCH_STUDENT, method_spec, needs_any
from compress.quantize.report import REPORT_FILE, validate_report

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from compress.data.rows import TextData
    from compress.model.interface import ModelInterface
    from compress.quantize.evaluate import RuntimeFile
    from compress.quantize.qat import QATSource

INT8_METHODS = tuple(name for name, spec in METHODS.items() if spec.precision == "int8")
log = logging.getLogger(__name__)


def _tokenizer(tokenizer: "PreTrainedTokenizerBase | str | Path | None") -> "PreTrainedTokenizerBase":
    if tokenizer is None:
        raise EdgepressError("quantization needs the model's tokenizer to build calibration/eval inputs: "
                             "pass the folder holding tokenizer.json / vocab.txt")
    if isinstance(tokenizer, (str, Path)):
        from compress.model.loading import load_tokenizer

        return load_tokenizer(str(tokenizer))
    return tokenizer


def _as_text_data(data: "TextData | list[str] | None", source: str) -> "TextData | None":
    from compress.data.rows import TextData

    if data is None or isinstance(data, TextData) or hasattr(data, "texts"):  # TextData or tagged sentences (NER)
        return data
    return TextData([str(t) for t in data], source=source)


def resolve_config(config: QuantizeConfig | None, methods: list[str] | None) -> QuantizeConfig:
    """The config with ``methods`` (if given) applied and validated."""
    cfg = config or QuantizeConfig()
    if methods:
        cfg = QuantizeConfig.model_validate({**cfg.model_dump(), "methods": list(dict.fromkeys(methods))})
    return cfg


def quantize_onnx(onnx_path: Path, out_dir: Path, methods: list[str] | None = None,
                  tokenizer: "PreTrainedTokenizerBase | str | Path | None" = None,
                  calibration: "TextData | list[str] | None" = None, eval_data: "TextData | list[str] | None" = None,
                  task: str = "embedding", max_length: int = 128, config: QuantizeConfig | None = None,
                  name_prefix: str = "model", qat_source: "QATSource | None" = None,
                  interface: "ModelInterface | None" = None,
                  runtime_files: "list[RuntimeFile] | None" = None) -> dict[str, Any]:
    """Quantize ``onnx_path`` with each method into ``out_dir``, guard accuracy, compare latency; returns the report
    (checked against report.schema.json before it is written; ``QuantizeReport.from_dict`` types it).

    ``interface``: the model's (its teacher's) pooling, for files that output token vectors only; default: the
    edgepress interface saved beside ``onnx_path``, else mean pooling.

    Method ``qat`` also needs ``qat_source`` (the PyTorch student the ONNX file came from, its teacher and
    training texts); it runs last, and by default only when NNCF PTQ missed the floor.

    ``runtime_files`` (the export stage's ExecuTorch / LiteRT / OpenVINO / Core ML files) are scored on the guard's
    rows in their own runtimes against the same fp32 reference: the report's ``runtimes`` section.
    """
    from compress.quantize.calibration import TextCalibrationFeeds, calibration_texts
    from compress.quantize.cpu import detect_cpu, recommend_int8
    from compress.quantize.evaluate import build_eval_set, score_runtime, set_reference
    from benchmarks.feeds import tokenize_feeds
    from benchmarks.sessions import input_names, open_session
    from compress.quantize.graph import optimize_bert, prepare_for_quantization
    from compress.quantize.latency import compare_latency
    from compress.quantize.methods import FILE_TAG, PRECISION, Settings

    start = time.perf_counter()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EdgepressError(f"ONNX model '{onnx_path}' does not exist; run the export stage first")
    cfg = resolve_config(config, methods)
    if needs_any(cfg.methods, PYTORCH_STUDENT) and qat_source is None:
        raise EdgepressError("quantize method 'qat' trains the PyTorch student: run it in a pipeline after distill/prune, "
                             "or give `edgepress quantize` the student folder with --student")
    tok = _tokenizer(tokenizer)
    calibration = _as_text_data(calibration, "calibration texts")
    eval_data = _as_text_data(eval_data, "eval texts")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "_work"
    work.mkdir(exist_ok=True)
    report: dict[str, Any] = {"source": str(onnx_path), "task": task, "methods": {}}
    try:
        cpu, cpu_source = recipe_cpu(cfg, detect_cpu)
        recipe = recommend_int8(cpu)
        report["cpu"] = {**cpu.to_dict(), "source": cpu_source}
        report["int8_recipe"] = {**recipe.to_dict(), "chosen_for": f"{cpu.isa} ({cpu_source})"}
        log.info("quantize: INT8 recipe for %s (%s): weights %s, activations %s, reduce_range %s", cpu.isa,
                 cpu_source, recipe.weight_type, recipe.activation_type, recipe.reduce_range)

        # fp32 baseline: the graph every variant is quantized from (fused when optimize_graph)
        baseline = onnx_path
        report["graph"] = {"optimized": cfg.optimize_graph}
        if cfg.optimize_graph:
            baseline = out_dir / "model.opt.onnx"
            report["graph"]["fused_ops"] = optimize_bert(onnx_path, baseline, embed_layer_norm=cfg.embedding.bits == 8,
                                                             slow_cpu_fusions=bool(cfg.slow_cpu_fusions))
        prepared = work / "prepared.onnx"
        report["graph"].update(prepare_for_quantization(baseline, prepared))
        plain = prepared
        if cfg.optimize_graph and needs_any(cfg.methods, PLAIN_GRAPH):
            plain = work / "prepared-plain.onnx"  # NNCF's ONNX backend does not know com.microsoft fused ops
            prepare_for_quantization(onnx_path, plain)

        # eval rows for the guard
        guard_data, guard_source = eval_data, "eval"
        if guard_data is None:
            guard_data, guard_source = calibration, "calibration (no eval data given)"
        if guard_data is None:
            from compress.data.rows import TextData, builtin_pydoc_sentences

            guard_data, guard_source = TextData(builtin_pydoc_sentences(), source="builtin:pydoc"), "builtin:pydoc"
        from compress.model.interface import saved_interface

        pooling = interface if interface is not None else saved_interface(onnx_path.parent)
        ev = build_eval_set(tok, guard_data, task, baseline, max_length, cfg.guard.eval_samples, pooling)
        report["eval"] = {"used": guard_source, **set_reference(ev, baseline)}

        # calibration rows (static, nncf)
        feeds = None
        if needs_any(cfg.methods, CALIBRATION_FEEDS):
            if calibration is None:
                raise DataError("static, NNCF and QAT quantization need calibration texts: give calibration data "
                                "(e.g. --calibration-data FILE, or data.train in the config)")
            texts, pairs = calibration_texts(calibration, task, cfg.calibration_samples)
            feeds = TextCalibrationFeeds(tok, texts, pairs, input_names(open_session(prepared)), max_length, calibration.source)

        lat_len = cfg.latency.seq_len or max_length
        lat_texts = (guard_data.texts * cfg.latency.batch_size)[: cfg.latency.batch_size]
        lat_feed = tokenize_feeds(tok, lat_texts, None, lat_len, input_names(open_session(baseline)), pad_to=lat_len)

        base = Settings(method="", per_channel=cfg.per_channel,
                        reduce_range=recipe.reduce_range if cfg.reduce_range is None else cfg.reduce_range,
                        weight_type=cfg.weight_type or recipe.weight_type,
                        activation_type=cfg.activation_type or recipe.activation_type,
                        calibration=cfg.static.calibration_method, smooth_quant_alpha=cfg.nncf.smooth_quant_alpha,
                        embedding_bits=cfg.embedding.bits)
        variants = []
        report["skipped"] = {}
        for method in sorted(cfg.methods, key=lambda m: m == "qat"):  # QAT last: it may only be PTQ's fallback
            nncf_rec = report["methods"].get("nncf")
            if method == "qat" and cfg.qat.only_if_ptq_fails and nncf_rec is not None and nncf_rec["meets_floor"]:
                report["skipped"]["qat"] = (f"NNCF PTQ met the floor ({nncf_rec['retention']:.4f} >= "
                                            f"{cfg.guard.retention_floor}); set quantize.qat.only_if_ptq_fails=false to train anyway")
                continue
            read_before = feeds.yielded if feeds is not None else 0
            rec = _run_method(method, base, cfg, prepared, plain, baseline, feeds, ev, work,
                              qat=(qat_source, task, max_length))
            dst = out_dir / f"model.{FILE_TAG[method]}.onnx"
            shutil.move(str(rec.pop("file")), dst)
            rec["latency"] = compare_latency(baseline, dst, lat_feed, cfg.latency.runs, cfg.latency.warmup)
            rec["flags"] = ([] if rec["meets_floor"] else [f"retention {rec['retention']} < floor {cfg.guard.retention_floor}"]) + \
                (["slower than fp32 on this CPU"] if rec["latency"]["slower_than_fp32"] else [])
            rec.update(path=dst.name, variant=f"{name_prefix}-{FILE_TAG[method]}", precision=PRECISION[method],
                       size_mb=round(dst.stat().st_size / 2**20, 3))
            if feeds is not None and CALIBRATION_FEEDS in method_spec(method).needs:
                rec["calibration_rows_yielded"] = feeds.yielded - read_before
            report["methods"][method] = rec
            variants.append({"name": rec["variant"], "format": "onnx", "path": dst.name, "precision": rec["precision"]})
        if cfg.optimize_graph:
            variants.insert(0, {"name": f"{name_prefix}-fp32-opt", "format": "onnx", "path": baseline.name, "precision": "fp32"})
        report["variants"] = variants
        report["calibration"] = None if feeds is None else feeds.summary()
        report["fp32_size_mb"] = round(baseline.stat().st_size / 2**20, 3)
        report["recommended"] = _recommend(report["methods"])
        report["runtimes"] = [score_runtime(f, ev, cfg.guard.retention_floor, out_dir) for f in runtime_files or []]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - start, 2)
    report = json.loads(json.dumps(report, default=str))  # the JSON form, what the file and stage.json hold
    validate_report(report)
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


def recipe_cpu(cfg: QuantizeConfig, detect: Any) -> tuple[Any, str]:
    """The CPU the INT8 recipe is for, and where it was read: ``cfg.target_cpu`` (a probed device) or this machine."""
    from compress.quantize.cpu import CpuInfo

    if cfg.target_cpu is not None:
        t = cfg.target_cpu
        return CpuInfo(arch=t.arch.lower(), model=t.model, flags=set(t.flags)), t.source
    return detect(), "this machine"


def _run_method(method: str, base: Any, cfg: QuantizeConfig, prepared: Path, plain: Path, baseline: Path,
                feeds: Any, ev: Any, work: Path, qat: tuple[Any, str, int]) -> dict[str, Any]:
    """One method under the accuracy guard."""
    import dataclasses

    import onnx

    from compress.quantize.graph import graph_blocks
    from compress.quantize.guard import Guard
    from compress.quantize.methods import MethodInputs

    spec = method_spec(method)
    src = plain if PLAIN_GRAPH in spec.needs else prepared
    blocks = graph_blocks(onnx.load(str(src)))
    s = dataclasses.replace(base, method=method)
    if method == "static" and s.activation_type == "qint8" and s.weight_type == "quint8":
        s = dataclasses.replace(s, weight_type="qint8")
    job = MethodInputs(src=src, cfg=cfg, work=work, feeds=feeds, qat=qat)
    guard = Guard(method, spec.quantizer(job), ev, blocks, cfg.guard, work)
    rec = guard.run(s, baseline)
    if PYTORCH_STUDENT in spec.needs:
        rec["graph"] = "exported from the QAT-trained PyTorch student (QDQ)"
    else:
        rec["graph"] = "plain" if src == plain and plain != prepared else ("fused" if cfg.optimize_graph else "plain")
    return rec


def _recommend(methods: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fastest INT8 variant that meets the floor and is not slower than fp32; else fp32."""
    ok = [(r["latency"]["ratio"], name) for name, r in methods.items()
          if name in INT8_METHODS and r["meets_floor"] and not r["latency"]["slower_than_fp32"]]
    if not ok:
        tried = [n for n in methods if n in INT8_METHODS]
        reason = ("no INT8 method was requested" if not tried else
                  "no INT8 variant both met the retention floor and ran faster than fp32 on this CPU")
        return {"variant": "fp32", "path": None, "reason": reason}
    ratio, name = min(ok)
    return {"variant": methods[name]["variant"], "method": name, "path": methods[name]["path"],
            "latency_ratio": ratio, "reason": f"fastest INT8 variant meeting the floor ({ratio:.2f}x fp32 latency)"}
