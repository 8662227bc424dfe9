"""Model folders and files checked when they are first read, each problem one line with the path and the fix.

Weights are opened without running them: ``model.safetensors`` through ``safetensors.safe_open`` (header
and file length, no tensor is copied), ``pytorch_model.bin`` only through ``torch.load(weights_only=True)``
— a checkpoint that needs full unpickling can run arbitrary code, so it is refused, not loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compress.core.errors import ModelLoadError

ONNX_SUFFIXES = (".onnx", ".ort")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# model types whose position ids start after the padding index (RoBERTa's create_position_ids_from_input_ids)
PADDING_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod", "mpnet",
                        "roberta-prelayernorm", "ibert", "markuplm", "lilt"}


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


def refuse_file_as_folder(path: Path, spec: str) -> None:
    """A file where a save_pretrained folder is expected: say what the file is and which command takes it."""
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        raise ModelLoadError(f"model '{spec}' is an ONNX file, not a model folder; `edgepress quantize` and "
                             "`edgepress bench run` take ONNX files, while distill/prune/export need the "
                             "save_pretrained folder it was exported from")
    if suffix in (".pt", ".ptl", ".pte"):
        raise ModelLoadError(f"model '{spec}' is a TorchScript/ExecuTorch file, not a model folder; "
                             "`edgepress bench run` measures it, other commands need a save_pretrained folder")
    if suffix in (".safetensors", ".bin") or path.name == "config.json":
        raise ModelLoadError(f"model '{spec}' is a single file; give the folder that holds it, config.json and "
                             f"the tokenizer ('{path.parent}')")
    raise ModelLoadError(f"model '{spec}' is a file, not a folder; point to a save_pretrained folder "
                         "(config.json + model.safetensors)")


def model_config_folder(path: Path) -> Path | None:
    """The folder holding a model's config.json: the model folder itself, or the one beside a model file (an
    optimum or `edgepress export` folder's ONNX file); None when there is none."""
    folder = path if path.is_dir() else path.parent
    return folder if (folder / "config.json").is_file() else None


def read_model_config(folder: Path, spec: str | None = None) -> dict[str, Any]:
    """config.json of a model folder as a dict, refusing one that does not parse."""
    path = folder / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"model config '{path}' is not valid JSON ({_first_line(exc)}); re-save the model "
                             "with save_pretrained or restore config.json") from None
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"model config '{path}' holds a {type(cfg).__name__}, not a JSON object")
    return cfg


def check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
    except Exception as exc:  # noqa: BLE001 - SafetensorError is a Rust type not exported by every version
        raise ModelLoadError(f"weights file '{path}' does not load ({_first_line(exc)}): it is truncated or not a "
                             "safetensors file; copy or download the model again, or re-save it with "
                             "save_pretrained") from None


# torch's wording when weights_only refuses a global the pickle names (code, not tensors)
_NEEDS_UNPICKLING = ("Weights only load failed", "Unsupported global", "Unsupported operand")


def check_torch_weights(path: Path) -> None:
    """A ``.bin/.pt/.pth`` state dict must load with ``weights_only=True`` (no code runs while unpickling).

    The zip format (torch >= 1.6) is opened with ``mmap`` (nothing copied); the legacy format, which mmap cannot
    read, is loaded whole. Only a file that fails to parse is called damaged; one that parses but names code is
    refused as needing full unpickling.
    """
    import pickle
    import zipfile

    import torch

    try:
        torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        if not any(t in str(exc) for t in _NEEDS_UNPICKLING):  # "pickle data was truncated" and the like
            raise ModelLoadError(f"weights file '{path}' does not load ({_first_line(exc)}): it is truncated or "
                                 "damaged; copy or download the model again") from None
        raise ModelLoadError(
            f"weights file '{path}' needs full unpickling (it holds code, not only tensors), which can run arbitrary "
            "code; refused: in an environment you trust, load it and convert it to safetensors with "
            "save_pretrained(dir, safe_serialization=True)") from None
    except Exception as exc:  # noqa: BLE001 - zip/reader errors of a truncated file
        raise ModelLoadError(f"weights file '{path}' does not load ({_first_line(exc)}): it is truncated or damaged; "
                             "copy or download the model again") from None


def _weight_files(folder: Path) -> list[Path]:
    """The weight files from_pretrained would read: safetensors (single or sharded) before pytorch_model.bin."""
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = folder / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelLoadError(f"weights index '{index}' does not parse ({_first_line(exc)}); copy the model "
                                     "again") from None
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise ModelLoadError(f"weights index '{index}' names {missing[0]}, which is not in the folder; copy "
                                     "the missing shard(s)")
            return [folder / s for s in shards]
        if (folder / single).is_file():
            return [folder / single]
    return []


def check_model_folder(folder: Path, spec: str | None = None) -> None:
    """A local save_pretrained folder: config.json parses and every weight file deserializes."""
    spec = spec or str(folder)
    read_model_config(folder, spec)
    for path in _weight_files(folder):
        if path.suffix == ".safetensors":
            check_safetensors(path)
        else:
            check_torch_weights(path)


def position_limit(config: Any) -> int | None:
    """Longest input the position embeddings take (RoBERTa-family: minus the padding offset); None if unbounded."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    n = get("max_position_embeddings")
    if not isinstance(n, int):
        return None
    if get("model_type") in PADDING_OFFSET_TYPES:
        pad = get("pad_token_id")
        n -= (pad if isinstance(pad, int) else 1) + 1
    return n


def check_max_length(config: Any, max_length: int, spec: str, field: str = "teacher.max_length") -> None:
    limit = position_limit(config)
    if limit is not None and max_length > limit:
        raise ModelLoadError(f"{field}={max_length} is beyond model '{spec}''s position embeddings ({limit} tokens): "
                             f"set {field} to {limit} or less")


def check_tokenizer_fits(tokenizer: Any, config: Any, spec: str) -> None:
    """Every token id the tokenizer can emit must index the model's embedding matrix."""
    vocab = config.get("vocab_size") if isinstance(config, dict) else getattr(config, "vocab_size", None)
    if isinstance(vocab, int) and len(tokenizer) > vocab:
        raise ModelLoadError(f"tokenizer of '{spec}' has {len(tokenizer)} tokens but the model's embedding has "
                             f"{vocab} rows (config.json vocab_size): ids past {vocab - 1} would crash; use the "
                             "tokenizer the model was trained with, or resize the embeddings and re-save")


def check_onnx_file(path: Path, option: str = "model") -> None:
    """Where an ONNX file is expected: refuse a folder (naming the .onnx files in it) and a file that does not parse."""
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.onnx"))[:4]
        hint = f" ({', '.join(str(path / f) for f in found)})" if found else ""
        raise ModelLoadError(f"{option} '{path}' is a folder, but an ONNX file is expected here: give the .onnx "
                             f"file inside it{hint}, or use `edgepress export` to write one from a model folder")
    if not path.is_file():
        raise ModelLoadError(f"ONNX file '{path}' does not exist")
    if path.suffix.lower() not in ONNX_SUFFIXES:
        raise ModelLoadError(f"{option} '{path}' is not an ONNX file (expected a .onnx file)")
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError and friends
        raise ModelLoadError(f"ONNX file '{path}' does not parse ({_first_line(exc)}): it is truncated or not an "
                             "ONNX model; export it again") from None
