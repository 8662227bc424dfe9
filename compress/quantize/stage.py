"""Pipeline stage ``quantize``: quantized variants of the upstream ONNX model, guarded and timed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from compress.core.errors import EdgepressError
from compress.model.formats import formats_with
from compress.quantize.report import REPORT_FILE, QuantizeReport
from compress.run.stages import StageInputs, StageResult, Variant, own_model, tag_names, teacher_source
from compress.tasks import task_spec

if TYPE_CHECKING:
    from compress.config import RunConfig
    from compress.quantize.evaluate import RuntimeFile
    from compress.model.interface import ModelInterface
    from compress.quantize.qat import QATSource

OUTPUT_KEYS = {"fp16": "onnx_fp16", "int4": "onnx_int4"}
RUNTIME_FORMATS = formats_with("guard_scores")  # scored on the guard's rows beside the ONNX files (the registry's)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")


def _tokenizer_source(inputs: StageInputs) -> str:
    """Export's tokenizer folder, else the folder of the model the ONNX file came from, else the ONNX file's folder
    when it holds a tokenizer (optimum's layout). A bare file with none is refused: another model's tokenizer (the
    configured teacher's) would feed it the wrong token ids."""
    found = inputs.latest("tokenizer") or own_model(inputs)
    if found is not None:
        return str(found)
    onnx = inputs.require("onnx", "quantize")
    if any((onnx.parent / name).is_file() for name in TOKENIZER_FILES):
        return str(onnx.parent)
    raise EdgepressError(f"quantize needs the tokenizer of '{onnx}' (for calibration and the accuracy guard), and "
                         "none is beside it: pass --tokenizer FOLDER (the export's tokenizer/ folder)")


def qat_source(cfg: "RunConfig", inputs: StageInputs, splits) -> "QATSource":
    """The PyTorch student upstream of the ONNX file, its teacher, and the distill stage's training texts."""
    from compress.data.rows import distillation_train
    from compress.quantize.qat import QATSource

    student = inputs.latest("model")
    if student is None:
        raise EdgepressError("quantize method 'qat' fine-tunes the PyTorch student: put distill (or prune) before "
                             "export and quantize in `stages:`")
    return QATSource(student, teacher_source(cfg, inputs), distillation_train(cfg.data, cfg.task, splits.train, inputs.data.unlabeled()),
                     cfg.distill, cfg.seed)


def model_interface(cfg: "RunConfig", inputs: StageInputs) -> "ModelInterface | None":
    """The upstream model's interface (its edgepress interface: the teacher's pooling), None without a model."""
    from compress.model.interface import interface_of

    model = inputs.latest("model")
    return None if model is None else interface_of(model, cfg.task)


def null_threshold(cfg: "RunConfig", inputs: StageInputs) -> float | None:
    """The no-answer threshold of the upstream QA model (its edgepress interface), None when it has none."""
    iface = model_interface(cfg, inputs)
    return None if iface is None else iface.null_threshold


def runtime_files(inputs: StageInputs) -> "list[RuntimeFile]":
    """The runtime files (ExecuTorch, LiteRT, OpenVINO, Core ML; every precision) the latest upstream export wrote."""
    from compress.quantize.evaluate import RuntimeFile

    export = next((rec for rec in reversed(inputs.upstream) if rec.name == "export"), None)
    if export is None:
        return []
    return [RuntimeFile(v.format, v.precision, export.dir / v.path) for v in export.variants
            if v.format in RUNTIME_FORMATS]


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Quantize ``inputs['onnx']`` with every configured method; ``onnx_int8`` is the recommended INT8 file."""
    from compress.model.loading import load_tokenizer
    from compress.quantize.api import quantize_onnx

    onnx_path = inputs.require("onnx", "quantize")
    tokenizer = load_tokenizer(_tokenizer_source(inputs))
    # labels are parsed for every task: embedding pairs with scores (STS) reach the guard as Spearman rows
    splits = inputs.data.splits()
    outputs = task_spec(cfg.task).outputs
    if outputs == "words":
        splits.eval.label_names = tag_names(cfg, inputs)  # logits -> tags for the guard's entity F1
    if outputs == "answers":
        splits.eval.null_threshold = null_threshold(cfg, inputs)  # answers read as the exported model reads them
    qat = qat_source(cfg, inputs, splits) if "qat" in cfg.quantize.methods else None
    report = quantize_onnx(onnx_path, out_dir, tokenizer=tokenizer, calibration=splits.train, eval_data=splits.eval,
                           task=cfg.task, max_length=cfg.teacher.max_length, config=cfg.quantize,
                           name_prefix="student", qat_source=qat, interface=model_interface(cfg, inputs),
                           runtime_files=runtime_files(inputs))
    typed = QuantizeReport.from_dict(report)
    outputs: dict[str, str] = {"report": REPORT_FILE}
    if typed.recommended.path:
        outputs["onnx_int8"] = typed.recommended.path
    for method, key in OUTPUT_KEYS.items():
        if method in typed.methods:
            outputs[key] = typed.methods[method].path
    variants = [Variant(v.name, v.format, v.path, v.precision) for v in typed.variants]
    return StageResult(outputs=outputs, metrics=report, variants=variants)
