"""The app bundle: model file(s), tokenizer, labels, manifest.json (validated) and a reference script."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from compress.model.formats import FormatTable
from compress.tasks import TASKS
from export.core import Prepared, Written, prepare
from export.files import model_files
from export.errors import ExportError, OutputExistsError
from export.heads import FILE_NAMES, FILE_PRECISION
from export.parity import DEFAULT_ATOL, DEFAULT_RTOL
from export.writer import write_formats

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
REFERENCE_SCRIPT = Path(__file__).with_name("bundle_reference.py")
JS_DIR = Path(__file__).with_name("bundle_js")
# the JavaScript client (Node and browsers), its demo page and the npm packages it needs, pinned (npm ci)
JS_FILES = ("edgepress-client.mjs", "index.html", "package.json", "package-lock.json")

RUNTIMES = FormatTable("app_runtime")  # format -> the app-side runtime that loads it (the registry's)
INPUT_MEANING = {"input_ids": "token ids from the tokenizer, [CLS] ... [SEP] included",
                 "attention_mask": "1 for real tokens, 0 for padding",
                 "token_type_ids": "segment ids: 0 for the first sentence, 1 for the second (all 0 for one sentence)"}
QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul",
             "DynamicQuantizeMatMul", "QAttention", "MatMulIntegerToFloat", "GatherBlockQuantized")



POSTPROCESSING = {
    "token-classification": "argmax of logits per token; each word's tag is read at its first sub-token (offsets from "
                            "tokenizer.json); B-X starts an entity and I-X of the same X continues it (IOB2; BIOES "
                            "E-/S- close it), merged into spans with character offsets — reference.py does this",
    "question-answering": "feed question + context as a pair; score spans start<=end within the context tokens by "
                          "start_logits[start] + end_logits[end], at most max_answer_length tokens; when "
                          "start_logits[0] + end_logits[0] ([CLS]) beats the best span by more than "
                          "no_answer_threshold the question has no answer (SQuAD 2.0); the span's character offsets "
                          "give the text — reference.py does this",
}

def sha256(path: Path) -> str:
    """Hex sha256 of a file (read in chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``; refuse a non-empty existing one unless ``overwrite`` (then empty it)."""
    if out_dir.exists() and (out_dir.is_file() or any(out_dir.iterdir())):
        if not overwrite:
            raise OutputExistsError(f"output directory '{out_dir}' already exists and is not empty; "
                                    "pass overwrite=True (--overwrite) to replace it, or choose another directory")
        if out_dir.is_file():
            out_dir.unlink()
        else:
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Validate ``manifest`` against export/manifest.schema.json (jsonschema); raise ExportError naming the field."""
    from compress.core.schemas import schema_problem
    from compress.tasks import TASKS

    schema = json.loads(SCHEMA_PATH.read_text())
    schema["properties"]["task"] = {"enum": list(TASKS)}  # the registry as it is now: a registered task is valid
    problem = schema_problem(manifest, schema)
    if problem:
        raise ExportError(f"manifest.json is invalid at '{problem[0]}': {problem[1]}")


@dataclass
class ManifestModel:
    """One model file of a bundle (a manifest's ``models[]`` entry): the path an app loads and what loads it."""

    file: str
    format: str
    precision: str
    runtime: str


@dataclass
class BundleManifest:
    """Typed reads of a bundle's manifest.json (schema: export/manifest.schema.json) for the readers outside export
    (the package stage and its model card): the task, the encoder's shape, the model files and how the INT8 one
    was made."""

    task: str
    models: list[ManifestModel]
    quantization: dict[str, Any] | None
    hidden_size: int | None = None
    num_layers: int | None = None

    @property
    def quantization_method(self) -> str | None:
        """The method that made the INT8 file (what the package stage passed to build_bundle); None without one."""
        return (self.quantization or {}).get("method")

    @classmethod
    def from_dict(cls, m: dict[str, Any]) -> "BundleManifest":
        """The manifest ``m`` (a parsed manifest.json, or build_bundle's result), typed; a missing required field
        is an ExportError naming it."""
        missing = [k for k in ("task", "models", "quantization") if k not in m]
        missing += [f"models/{i}/{k}" for i, e in enumerate(m.get("models") or [])
                    for k in ("file", "format", "precision", "runtime") if k not in e]
        if missing:
            raise ExportError(f"manifest.json lacks {', '.join(missing)} (export/manifest.schema.json); rebuild the "
                              "bundle")
        models = [ManifestModel(e["file"], e["format"], e["precision"], e["runtime"]) for e in m["models"]]
        return cls(task=m["task"], models=models, quantization=m["quantization"], hidden_size=m.get("hidden_size"),
                   num_layers=m.get("num_layers"))

    @classmethod
    def load(cls, bundle_dir: Path) -> "BundleManifest":
        """Read and type ``bundle_dir``/manifest.json."""
        path = Path(bundle_dir) / "manifest.json"
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ExportError(f"cannot read bundle manifest '{path}': {exc}") from None


def _versions(formats: Sequence[str]) -> dict[str, str | None]:
    from importlib import metadata

    names = ["edgepress", "torch", "transformers", "onnx", "onnxruntime", "tokenizers"]
    if "executorch" in formats:
        names.append("executorch")
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for n in names:
        try:
            found[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            found[n] = None
    return found


def _tokenizer_info(prep: Prepared, tok_dir: Path, bundle_dir: Path) -> dict[str, Any]:
    tok = prep.tokenizer
    data = json.loads((tok_dir / "tokenizer.json").read_text())
    norm = json.dumps(data.get("normalizer") or {})
    lowercase = '"lowercase": true' in norm or '"Lowercase"' in norm or bool(getattr(tok, "do_lower_case", False))
    specials = {}
    for role in ("pad", "unk", "cls", "sep", "mask", "bos", "eos"):
        token = getattr(tok, f"{role}_token", None)
        if token is not None:
            specials[role] = {"token": str(token), "id": int(tok.convert_tokens_to_ids(str(token)))}
    vocab = tok_dir / "vocab.txt"
    return {"tokenizer_json": str((tok_dir / "tokenizer.json").relative_to(bundle_dir)),
            "vocab": str(vocab.relative_to(bundle_dir)) if vocab.is_file() else None,
            "files": sorted(str(p.relative_to(bundle_dir)) for p in tok_dir.iterdir()),
            "type": (data.get("model") or {}).get("type", "unknown"), "lowercase": lowercase,
            "pad_token_id": int(tok.pad_token_id if tok.pad_token_id is not None else 0), "special_tokens": specials}


def _output_specs(prep: Prepared) -> list[dict[str, Any]]:
    cfg = prep.model.config
    sizes = {"hidden": getattr(cfg, "hidden_size", None) or getattr(cfg, "dim", None),
             "vocab": getattr(cfg, "vocab_size", None), "num_labels": getattr(cfg, "num_labels", None), "1": 1}
    return [{"name": o.name, "dtype": "float32", "meaning": o.meaning or "model output",
             "shape": [d if d in ("batch", "sequence") else int(sizes[d]) for d in o.shape]} for o in prep.head.outputs]


def _int4_tensors(graph: Any) -> list[str]:
    """Initializers of type INT4/UINT4 (a foreign file's 4-bit table; edgepress writes uint8 nibble pairs)."""
    from onnx import TensorProto

    return [t.name for t in graph.initializer if t.data_type in (TensorProto.INT4, TensorProto.UINT4)]


def _add_quantized(prep: Prepared, src: Path, bundle_dir: Path, with_ort: bool = False,
                   details: dict[str, Any] | None = None,
                   place: Callable[[Path, Path], Any] = shutil.copy2) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Copy a quantized ONNX into the bundle (and its .ort conversion), check its interface, measure parity.

    Parity of INT8 files is measured, not enforced: the quantize stage's accuracy guard owns that gate.
    """
    import onnx

    from export.parity import onnx_runner

    if not src.is_file():
        raise ExportError(f"quantized ONNX '{src}' does not exist; pass the .onnx written by the quantize stage")
    graph = onnx.load(str(src), load_external_data=False).graph
    ins = {i.name for i in graph.input}
    outs = [o.name for o in graph.output]
    if set(prep.input_names) != ins or outs != prep.output_names:
        raise ExportError(f"quantized ONNX '{src}' has inputs {sorted(ins)} and outputs {outs}; this bundle's "
                          f"model has {prep.input_names} -> {prep.output_names}: quantize the same model and head")
    counts = {op: sum(n.op_type == op for n in graph.node) for op in QUANT_OPS}
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        raise ExportError(f"'{src}' contains no quantized operators ({', '.join(QUANT_OPS[:5])}...); "
                          "pass the int8 file, not the fp32 one")
    dst = bundle_dir / "model.int8.onnx"
    place(src, dst)
    note = "int8: parity is measured, not enforced; the quantize stage owns its accuracy gate"
    parity = prep.check("quantized ONNX", onnx_runner(str(dst), prep.output_names), enforce=False)
    entries = [{"file": dst.name, "format": "onnx", "precision": "int8", "runtime": RUNTIMES["onnx"],
                "parity": {"max_abs_diff": parity["max_abs_diff"], "min_cosine": parity["min_cosine"], "enforced": False},
                "note": note}]
    quant = {"file": dst.name, "precision": "int8", "quantized_ops": counts}
    if with_ort and _int4_tensors(graph):  # ORT's format has no int4 type (edgepress packs its tables as uint8)
        import onnxruntime

        quant["ort_skipped"] = (f"the ORT format of onnxruntime {onnxruntime.__version__} cannot hold int4 tensors "
                                f"(the 4-bit tables of {dst.name}): apps load {dst.name}")
        logging.getLogger("edgepress.export").warning("bundle: no model.int8.ort: %s", quant["ort_skipped"])
    elif with_ort:
        from export.onnx_export import convert_to_ort

        res = convert_to_ort(prep, dst, bundle_dir, name="model.int8.ort", enforce=False)
        entries.append({"file": res["path"].name, "format": "ort", "precision": "int8", "runtime": RUNTIMES["ort"],
                        "parity": {"max_abs_diff": res["parity"]["max_abs_diff"],
                                   "min_cosine": res["parity"]["min_cosine"], "enforced": False},
                        "note": f"converted from {dst.name}; " + note})
    if details:
        quant.update({k: v for k, v in details.items() if k not in quant})
    return entries, quant


def _null_threshold(prep: Prepared) -> float:
    """The QA model's no-answer threshold (its interface's, tuned on dev), 0 (run_qa's default) without one."""
    threshold = None if prep.interface is None else prep.interface.null_threshold
    return float(threshold) if threshold is not None else 0.0


def _pooling_section(prep: Prepared) -> dict[str, Any] | None:
    if not TASKS[prep.head.task].pooled:
        return None
    from compress.model.interface import ModelInterface

    iface = prep.interface or ModelInterface("embedding")
    modes = iface.pooling_modes
    how = {"mean": "mean of last_hidden_state over positions with attention_mask 1",
           "cls": "last_hidden_state at position 0 ([CLS])", "max": "per-dimension max over positions with mask 1",
           "lasttoken": "last_hidden_state at the last position with mask 1",
           "weightedmean": "mean weighted by position (1..n) over positions with mask 1",
           "mean_sqrt_len_tokens": "sum over positions with mask 1 divided by sqrt(count)"}
    desc = "; ".join(how.get(m, m) for m in modes)
    desc += ("; then divided by its L2 norm (cosine = dot product)" if iface.normalize else
             "; not L2-normalised: normalise it yourself for cosine search")
    return {"mode": modes[0] if len(modes) == 1 else "+".join(modes), "output": "sentence_embedding",
            "normalized": bool(iface.normalize), "sentence_transformers": bool(iface.sentence_transformers),
            "description": desc + " (sentence_embedding already includes this)"}


def _javascript_section() -> dict[str, Any]:
    """How to run the bundle from JavaScript: the client, the demo page and the pinned npm packages."""
    deps = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    return {"client": JS_FILES[0], "demo": JS_FILES[1], "package": JS_FILES[2], "npm_packages": deps,
            "install": "npm ci (in this folder: installs the pinned packages of package.json into node_modules/)",
            "node": 'node edgepress-client.mjs "text" [--context CONTEXT] [--model FILE] [--raw]: '
                    "prints what reference.py prints",
            "browser": "serve this folder (python -m http.server --bind 127.0.0.1) and open index.html: its import "
                       "map loads @huggingface/tokenizers and onnxruntime-web from node_modules/, no CDN"}

def build_bundle(prep: Prepared, written: Written, bundle_dir: Path, opset: int,
                 quantized_onnx: Path | None = None, *, fp32_formats: Sequence[str] | None = None,
                 quantized_ort: bool = False, quantization: dict[str, Any] | None = None,
                 created_by: str = "edgepress export",
                 place: Callable[[Path, Path], Any] = shutil.copy2,
                 chosen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill ``bundle_dir`` (already empty) from written files; write labels, tokenizer, manifest, reference.py.

    ``fp32_formats`` limits which fp32 files are copied (None: every written one); ``quantized_onnx`` adds the
    INT8 file (and, with ``quantized_ort``, its ORT-format conversion); ``quantization`` adds how it was made.
    ``place(src, dst)`` puts each model file into the bundle (a copy; ``final/`` passes one that hard-links).
    ``chosen`` names the file a run chose and the runtime that runs it (a file outside the bundle: ``../<runtime>/``).
    """
    bundle_dir.mkdir(parents=True, exist_ok=True)
    models = []
    parity_key = {"onnx": "parity_onnx", "ort": "parity_ort", "torchscript": "parity_torchscript",
                  "ptl": "parity_ptl", "executorch": "parity_executorch"}
    entries = [(fmt, path, parity_key.get(fmt), False) for fmt, path in written.files.items()
               if fp32_formats is None or fmt in fp32_formats]
    if "onnx_optimized" in written.extra and (fp32_formats is None or "onnx" in fp32_formats):
        entries.insert(1, ("onnx", written.extra["onnx_optimized"], "parity_onnx_optimized", True))
    for fmt, path, key, optimized in entries:
        # a platform runtime's file keeps its folder (litert/, openvino/, coreml/) and every file it is made of
        name = FILE_NAMES[fmt] if "/" in FILE_NAMES.get(fmt, "") else path.name
        parts = model_files(path)
        rel = [Path(name).parent / f.relative_to(path.parent) for f in parts]
        for src, dst in zip(parts, rel):
            if src.resolve() != (bundle_dir / dst).resolve():
                (bundle_dir / dst).parent.mkdir(parents=True, exist_ok=True)
                place(src, bundle_dir / dst)
        par = written.metrics[key or f"parity_{fmt}"]
        entry = {"file": name, "format": fmt, "precision": FILE_PRECISION.get(fmt, "fp32"), "runtime": RUNTIMES[fmt]}
        if par.get("predicted", True):  # Core ML on Linux was not run: its note says so, and there is no parity
            entry["parity"] = {"max_abs_diff": par["max_abs_diff"], "min_cosine": par["min_cosine"], "enforced": True}
        if rel != [Path(name)]:  # an IR's .xml + .bin, a .mlpackage folder's files
            entry["files"] = [r.as_posix() for r in rel]
        if fmt in ("onnx", "ort"):
            entry["opset"] = opset
            entry["graph_optimized"] = optimized
        if "note" in par:
            entry["note"] = par["note"]
        models.append(entry)
    if "ort_required_operators" in written.extra and any(e["format"] == "ort" for e in models):
        cfg = written.extra["ort_required_operators"]
        if cfg.parent.resolve() != bundle_dir.resolve():
            shutil.copy2(cfg, bundle_dir / cfg.name)
    quant_info = None
    if quantized_onnx is not None:
        q_entries, quant_info = _add_quantized(prep, Path(quantized_onnx), bundle_dir, quantized_ort, quantization,
                                               place)
        models = q_entries + models  # the compressed file first: reference.py and apps pick the first ONNX/ORT
    if not models:
        raise ExportError("the bundle would hold no model file: give a quantized ONNX or keep an fp32 format")

    tok_dir = bundle_dir / "tokenizer"
    prep.tokenizer.save_pretrained(str(tok_dir))
    if not (tok_dir / "tokenizer.json").is_file():
        raise ExportError(f"the tokenizer of '{prep.model_dir}' is not a fast tokenizer (no tokenizer.json); "
                          "apps need tokenizer.json: convert it with transformers' AutoTokenizer(use_fast=True)")
    labels = None
    if TASKS[prep.head.task].class_names:
        id2label = {str(k): str(v) for k, v in sorted(prep.model.config.id2label.items())}
        (bundle_dir / "labels.json").write_text(json.dumps(id2label, indent=2) + "\n")
        labels = {"file": "labels.json", "id2label": id2label}
    shutil.copy2(REFERENCE_SCRIPT, bundle_dir / "reference.py")
    for name in JS_FILES:
        shutil.copy2(JS_DIR / name, bundle_dir / name)

    cfg = prep.model.config
    manifest: dict[str, Any] = {
        "schema_version": 1,
        "task": prep.head.task,
        "model_type": cfg.model_type,
        "architecture": (cfg.architectures or [type(prep.model).__name__])[0],
        "hidden_size": int(getattr(cfg, "hidden_size", None) or getattr(cfg, "dim")),
        "num_layers": int(getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers")),
        "created_by": created_by,
        "models": models,
        "inputs": [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"], "meaning": INPUT_MEANING[n]}
                   for n in prep.input_names],
        "dynamic_axes": {n: {"0": "batch", "1": "sequence"} for n in prep.input_names},
        "outputs": _output_specs(prep),
        "max_sequence_length": prep.max_length,
        "tokenizer": _tokenizer_info(prep, tok_dir, bundle_dir),
        "pooling": _pooling_section(prep),
        "labels": labels,
        "postprocessing": POSTPROCESSING.get(prep.head.task),
        **({"no_answer_threshold": _null_threshold(prep)} if TASKS[prep.head.task].outputs == "answers" else {}),
        "quantization": quant_info,
        "javascript": _javascript_section(),
        "versions": _versions([m["format"] for m in models]),
        **({"chosen": chosen} if chosen is not None else {}),
    }
    for out in prep.head.outputs:
        axes = {str(i): d for i, d in enumerate(out.shape) if d in ("batch", "sequence")}
        manifest["dynamic_axes"][out.name] = axes
    manifest["files"] = {str(p.relative_to(bundle_dir)): {"sha256": sha256(p), "size_bytes": p.stat().st_size}
                         for p in sorted(bundle_dir.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    validate_manifest(manifest)
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export_bundle(model_dir: Path, out_dir: Path, task: str, formats: Sequence[str] = ("onnx",),
                  quantized_onnx: Path | None = None, opset: int = 17, optimize: bool = False,
                  max_length: int | None = None, atol: float = DEFAULT_ATOL, overwrite: bool = False,
                  rtol: float = DEFAULT_RTOL) -> dict[str, Any]:
    """Write an app bundle for ``model_dir`` into ``out_dir``: every file parity-checked, manifest validated."""
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, overwrite)
    prep = prepare(Path(model_dir), task, max_length, atol, rtol=rtol)
    written = write_formats(prep, out_dir, formats, opset, optimize)
    manifest = build_bundle(prep, written, out_dir, opset, quantized_onnx)
    return {"bundle": str(out_dir), "manifest": manifest, "metrics": written.metrics, "parity": prep.parity}
