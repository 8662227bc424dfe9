"""The model card (``final/README.md``): what the model is, how it was made, what it scored, how to load it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compress.config import RunConfig
    from compress.interface import ModelInterface
    from compress.package import Choice

PIPELINE_TAG = {"embedding": "sentence-similarity", "classification": "text-classification",
                "regression": "text-classification", "mlm": "fill-mask",
                "token-classification": "token-classification", "question-answering": "question-answering"}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _results(bench: dict[str, Any] | None) -> list[str]:
    if not bench or not bench.get("teacher"):
        return ["No bench stage ran in this run, so no measured quality or latency is reported here."]
    t, c = bench["teacher"], bench.get("chosen")
    data = bench.get("data") or {}
    dev = (bench.get("devices") or {}).get("local") or {}
    s = bench.get("settings") or {}
    lines = [f"Measured by the run's bench stage on `{data.get('source')}` ({data.get('rows')} rows, metric "
             f"`{data.get('metric')}`); latency at batch {', '.join(map(str, s.get('batch_sizes', [])))}"
             f"{', lengths drawn from the eval texts' if s.get('realistic') else ''}, on {dev.get('cpu')} "
             f"({dev.get('cores')} cores).", "",
             "| model | format | size MB | metric | retention | p50 ms |", "|---|---|---:|---:|---:|---:|"]
    for e in (t, c):
        if not e:
            continue
        q = e.get("quality") or {}
        ret = e.get("retention")
        lines.append(f"| {e['name']}{' (teacher)' if e is t else ''} | {e['format']}/{e.get('precision')} | "
                     f"{_fmt(e.get('size_mb'), 1)} | {_fmt(q.get('value'))} | "
                     f"{'–' if ret is None else f'{100 * ret:.1f} %'} | {_fmt((e.get('latency_ms') or {}).get('p50'), 2)} |")
    if c is None:
        lines.append("")
        lines.append("(The shipped file was not among the bench stage's measured files.)")
    return lines


def _loading(cfg: "RunConfig", iface: "ModelInterface", choice: "Choice") -> list[str]:
    task = cfg.task
    lines = ["## Load it", "", "```python"]
    if iface.sentence_transformers:
        lines += ["from sentence_transformers import SentenceTransformer",
                  'model = SentenceTransformer("model")                      # PyTorch',
                  'onnx = SentenceTransformer("model", backend="onnx")       # ONNX Runtime (fp32)']
        if choice.precision == "int8":
            lines.append('int8 = SentenceTransformer("model", backend="onnx", model_kwargs={"file_name": '
                         '"onnx/model_qint8_...onnx"})')
        lines.append('embeddings = model.encode(["A sentence to embed."])')
    else:
        auto = {"classification": "AutoModelForSequenceClassification", "regression": "AutoModelForSequenceClassification",
                "mlm": "AutoModelForMaskedLM", "embedding": "AutoModel"}.get(task, "AutoModel")
        lines += [f"from transformers import AutoTokenizer, {auto}",
                  f'model = {auto}.from_pretrained("model")', 'tokenizer = AutoTokenizer.from_pretrained("model")']
    ort_cls = {"embedding": "ORTModelForFeatureExtraction", "classification": "ORTModelForSequenceClassification",
               "regression": "ORTModelForSequenceClassification", "mlm": "ORTModelForMaskedLM"}.get(task)
    if ort_cls:
        file_arg = ', file_name="model_quantized.onnx"' if choice.precision == "int8" else ""
        lines += [f"from optimum.onnxruntime import {ort_cls}", f'ort_model = {ort_cls}.from_pretrained("onnx"{file_arg})']
    lines += ["```", "", "On a device: `bundle/` holds the model file(s), `tokenizer/tokenizer.json`, `manifest.json` "
              "(inputs, outputs, max length, pooling, labels, quantization) and `reference.py` "
              "(`python bundle/reference.py \"some text\"`, needs only onnxruntime, numpy and tokenizers)."]
    return lines


def model_card(cfg: "RunConfig", choice: "Choice", iface: "ModelInterface", bench: dict[str, Any] | None,
               manifest: dict[str, Any], info: dict[str, Any]) -> str:
    """Markdown with a Hugging Face YAML header (base_model, library, pipeline tag)."""
    library = "sentence-transformers" if iface.sentence_transformers else "transformers"
    front = ["---", f"base_model: {cfg.teacher.model}", f"library_name: {library}",
             f"pipeline_tag: {PIPELINE_TAG.get(cfg.task, cfg.task)}",
             "tags: [edgepress, distillation, pruning, quantization, onnx]", "---", ""]
    quant = manifest.get("quantization") or {}
    recipe = [f"- stages: {' → '.join(cfg.stages)}; student: {manifest['num_layers']} layers, hidden "
              f"{manifest['hidden_size']}",
              f"- shipped: **{choice.name}** ({choice.origin}, {choice.precision})"
              + (f", quantized with `{quant.get('method')}`" if quant.get("method") else ""),
              f"- interface (same as the teacher's): {iface.describe()}",
              f"- training data: `{cfg.data.train}`" + (f" (+ {len(cfg.data.unlabeled)} unlabelled source(s))"
                                                        if cfg.data.unlabeled else "")]
    if iface.id2label:
        recipe.append(f"- labels: {', '.join(f'{k}={v}' for k, v in sorted(iface.id2label.items()))}")
    body = [f"# {cfg.name}: a compressed `{cfg.teacher.model}`", "",
            f"Made by edgepress from the teacher `{cfg.teacher.model}` for task `{cfg.task}`.", "",
            "## Recipe", "", *recipe, "", "## Results", "", *_results(bench), "", *_loading(cfg, iface, choice), "",
            "## Files", "", f"- bundle: {', '.join(info['bundle']['models'])} ({info['bundle']['size_mb']:.1f} MB with "
                             "tokenizer and manifest)", ""]
    return "\n".join(front + body)
