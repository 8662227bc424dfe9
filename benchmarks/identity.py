"""What a measured model is: a content hash (to match one model across reports) and its shape (depth, heads,
FFN width, vocabulary), which names it by what it is, e.g. ``d3-p30-v16k-int8``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from export.files import model_files

HASH_CHARS = 16  # hex digits kept: enough to tell models apart in a report, short enough to read


def _onnx_external_files(path: Path) -> list[Path]:
    """The external-data files an ONNX file's initializers name (read from the graph, weights not loaded)."""
    import onnx

    graph = onnx_graph(path)
    if graph is None:
        return []
    names = {e.value for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
             for e in t.external_data if e.key == "location"}
    found = [(path.parent / n) for n in sorted(names)]
    return [p for p in found if p.is_file() and p.resolve() != path.resolve()]


def _folder_weights(folder: Path) -> list[Path]:
    """The weights ``from_pretrained`` reads from a folder: model.safetensors (or its shards), else
    pytorch_model.bin (or its shards); no checkpoints, optimizer states, training_args.bin or onnx/ copies."""
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

    for single, index in ((SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME), (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)):
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            try:
                shards = set(json.loads((folder / index).read_text())["weight_map"].values())
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
                return [folder / index]  # a broken index: its own bytes, so the hash still tells models apart
            return [folder / n for n in sorted(shards)]
    return []


def weight_files(path: Path) -> list[Path]:
    """The files holding the model itself: an ONNX file and the external-data files its graph names, another model
    as ``export.files.model_files`` makes it up (an OpenVINO IR's .xml with its .bin, every file of a Core ML
    .mlpackage), or the weights a save_pretrained folder loads. Other files beside it never count in its size or hash."""
    path = Path(path)
    if path.is_dir() and path.suffix.lower() != ".mlpackage":
        return _folder_weights(path)
    return [*model_files(path), *_onnx_external_files(path)]


def content_hash(path: Path) -> str | None:
    """SHA-256 (first HASH_CHARS hex digits) of the weight files' bytes; None when there are none."""
    files = [p for p in weight_files(path) if p.is_file()]
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:HASH_CHARS]


def _config_file(source: Path) -> Path | None:
    source = Path(source)
    for candidate in (source / "config.json", source.parent / "config.json"):
        if candidate.is_file():
            return candidate
    return None


def model_shape(source: Path) -> dict[str, int] | None:
    """Layers, attention heads (all layers), FFN width, hidden size and vocabulary from the Hugging Face
    config.json of a model folder (or beside a file); None when there is none. Pruned heads are subtracted."""
    found = _config_file(source)
    if found is None:
        return None
    try:
        c = json.loads(found.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    layers = c.get("num_hidden_layers", c.get("n_layers"))
    heads = c.get("num_attention_heads", c.get("n_heads"))
    ffn = c.get("intermediate_size", c.get("hidden_dim"))
    if not all(isinstance(v, int) for v in (layers, heads, ffn)):
        return None
    gone = sum(len(v) for v in (c.get("pruned_heads") or {}).values())
    return {"layers": layers, "heads": layers * heads - gone, "ffn": ffn,
            "hidden": c.get("hidden_size", c.get("dim")), "vocab": c.get("vocab_size")}


def onnx_graph(path: Path) -> Any | None:
    """The graph of an ``.onnx`` file (weights stored outside it not loaded), or None when it is not one."""
    path = Path(path)
    if path.suffix != ".onnx" or not path.is_file():
        return None
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False).graph
    except Exception:  # not ONNX after all: the runner reports why
        return None


def embedding_table_bits(path: Path) -> int | None:
    """4 when an ONNX file looks its word embeddings up in a 4-bit table (GatherBlockQuantized), else None."""
    graph = onnx_graph(path)
    if graph is None:
        return None
    for node in graph.node:
        if node.op_type == "GatherBlockQuantized":
            bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
            return int(bits)
    return None


QUANTIZED_OPS = {"MatMulInteger": "int8", "DynamicQuantizeLinear": "int8", "QLinearMatMul": "int8",
                 "QuantizeLinear": "int8", "DequantizeLinear": "int8", "QAttention": "int8", "MatMulNBits": "int4"}


def onnx_precision(path: Path) -> str | None:
    """What an ONNX file computes in, read from the file (not its name): int4 / int8 when it holds quantized
    MatMuls, fp16 when most of its float weights are float16, else fp32; None when it is not a readable ONNX file."""
    import onnx

    graph = onnx_graph(path)
    if graph is None:
        return None
    ops = {QUANTIZED_OPS[n.op_type] for n in graph.node if n.op_type in QUANTIZED_OPS}
    if ops:
        return "int4" if ops == {"int4"} else "int8"
    half = sum(len(t.raw_data) for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)
    single = sum(len(t.raw_data) for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    return "fp16" if half > single else "fp32"


def vocab_tag(size: int) -> str:
    """``v16k`` for 16,000 tokens, ``v16400`` / ``v30522`` otherwise: exact, so two sizes never share a name."""
    return f"v{size // 1000}k" if size % 1000 == 0 else f"v{size}"


def shape_label(shape: dict[str, Any] | None, teacher: dict[str, Any] | None, precision: str) -> str | None:
    """``d<layers>-p<share of FFN neurons removed vs the teacher, %>-<vocab_tag>-<precision>`` (+ ``-e4`` for a
    4-bit embedding table), or ``…-h<heads %>-f<FFN %>-…`` when the share of heads removed differs from the FFN
    share by more than one head's worth (heads come in whole units: 30 % of 12 is 4), as search names its
    branches; None without a shape."""
    if not shape:
        return None
    parts = [f"d{shape['layers']}"]
    if teacher and teacher.get("ffn"):
        ffn = round(100 * (1 - shape["ffn"] / teacher["ffn"]))
        heads, one_head = ffn, 100.0
        if teacher.get("heads") and teacher.get("layers") and shape.get("heads") is not None:
            per_layer, teacher_per_layer = shape["heads"] / shape["layers"], teacher["heads"] / teacher["layers"]
            heads, one_head = round(100 * (1 - per_layer / teacher_per_layer)), 100 / teacher_per_layer
        parts.append(f"p{ffn:02d}" if abs(heads - ffn) < one_head else f"h{heads:02d}-f{ffn:02d}")
    if shape.get("vocab"):
        parts.append(vocab_tag(int(shape["vocab"])))
    parts.append(precision or "fp32")
    if shape.get("embedding_bits"):
        parts.append(f"e{shape['embedding_bits']}")
    return "-".join(parts)
