"""The teacher's interface as data: how it turns text into an answer, so a student can answer the same way.

Read once from the teacher folder and carried by every artifact: the task head, and for embedding models
the sentence-transformers pooling mode, whether embeddings are L2-normalised and the maximum sequence
length; for classifiers the label names. sentence-transformers folders are read *with*
sentence-transformers (the library that defines them), never by parsing their JSON files; student folders
are written back with it, so ``SentenceTransformer(student_folder)`` builds the teacher's stack.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import ModelLoadError
from compress.tasks import task_spec

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ST_MODULES = "modules.json"
SUPPORTED_ST_MODULES = ("Transformer", "Pooling", "Normalize")
DEFAULT_POOLING = "mean"


@dataclass
class ModelInterface:
    """What a caller of the model relies on: head, pooling, normalisation, max length, labels."""

    task: str
    pooling: str | list[str] | None = None  # sentence-transformers pooling mode(s); embedding only
    normalize: bool = False  # embeddings are L2-normalised (a Normalize module)
    max_seq_length: int = 128  # tokens; longer inputs are truncated
    id2label: dict[int, str] | None = None  # classification label names, by class id
    sentence_transformers: bool = False  # the teacher is a sentence-transformers folder
    do_lower_case: bool = False  # sentence-transformers' own lowercasing (on top of the tokenizer's)
    source: str = ""  # where it was read from
    null_threshold: float | None = None  # QA (SQuAD 2.0): answer '' when null score - best span score exceeds it
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.id2label is not None:
            d["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelInterface":
        d = dict(data)
        if d.get("id2label") is not None:
            d["id2label"] = {int(k): str(v) for k, v in d["id2label"].items()}
        return cls(**d)

    @property
    def label2id(self) -> dict[str, int] | None:
        return None if self.id2label is None else {v: k for k, v in self.id2label.items()}

    @property
    def pooling_modes(self) -> list[str]:
        if self.pooling is None:
            return [DEFAULT_POOLING]
        return [self.pooling] if isinstance(self.pooling, str) else list(self.pooling)

    def describe(self) -> str:
        """One line for logs and model cards."""
        if task_spec(self.task).pooled:
            return (f"{'+'.join(self.pooling_modes)} pooling, {'L2-normalised' if self.normalize else 'not normalised'}, "
                    f"max {self.max_seq_length} tokens")
        labels = f", labels {list(self.id2label.values())}" if self.id2label else ""
        null = f", no-answer threshold {self.null_threshold:.3f}" if self.null_threshold is not None else ""
        return f"{self.task} head, max {self.max_seq_length} tokens{labels}{null}"


def label_mapping(iface: ModelInterface) -> dict[str, dict[str, int]]:
    """``{"label2id": ...}`` for ``load_splits`` when the model has real class names, so names in the data
    map to the model's own ids; ``{}`` for models with transformers' placeholder names (LABEL_0...)."""
    names = iface.id2label or {}
    if not names or all(v == f"LABEL_{k}" for k, v in names.items()):
        return {}
    return {"label2id": iface.label2id}


def class_space(iface: ModelInterface) -> dict[str, Any]:
    """``load_splits`` keywords for a classifier: its class names (``label_mapping``) and its class count, so a
    class id in the data that the head has no logit for is refused before any work."""
    n = len(iface.id2label or {})
    return {**label_mapping(iface), **({"num_labels": n, "head": f"model '{iface.source}'"} if n else {})}


def st_modules() -> Any:
    """sentence-transformers' module classes (Transformer, Pooling, Normalize) for its 5.x layout or older."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers < 5.2
        from sentence_transformers import models as modules
    return modules


def is_sentence_transformers_folder(path: str | Path) -> bool:
    """A folder sentence-transformers saved (it holds modules.json)."""
    return (Path(path) / ST_MODULES).is_file()


def _named_labels(config: Any) -> dict[int, str] | None:
    id2label = getattr(config, "id2label", None) or {}
    return {int(k): str(v) for k, v in id2label.items()} or None


def load_sentence_transformer(path: str | Path) -> Any:
    """``SentenceTransformer(path)`` on CPU, failing with a one-line error naming the folder."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - sentence-transformers raises many types for broken folders
        raise ModelLoadError(f"sentence-transformers cannot load '{path}': {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}") from None


def _read_sentence_transformers(path: Path, task: str, source: str) -> ModelInterface:
    mods = st_modules()
    Normalize, Pooling = mods.Normalize, mods.Pooling
    st = load_sentence_transformer(path)
    kinds = [type(m).__name__ for m in st]
    unsupported = [k for k in kinds if k not in SUPPORTED_ST_MODULES]
    if unsupported:
        raise ModelLoadError(f"sentence-transformers model '{path}' has modules {kinds}; edgepress compresses "
                             f"{' + '.join(SUPPORTED_ST_MODULES)} stacks ({unsupported[0]} is not supported)")
    pooling = next((m for m in st if isinstance(m, Pooling)), None)
    if task_spec(task).pooled and pooling is None:
        raise ModelLoadError(f"sentence-transformers model '{path}' has no Pooling module; it does not produce "
                             "sentence embeddings")
    mode = None if pooling is None else pooling.get_config_dict()["pooling_mode"]
    first = st[0]
    return ModelInterface(task=task, pooling=mode, normalize=any(isinstance(m, Normalize) for m in st),
                          max_seq_length=int(st.max_seq_length or 512), sentence_transformers=True,
                          do_lower_case=bool(getattr(first, "do_lower_case", False)), source=source)


def read_interface(spec: str, task: str) -> ModelInterface:
    """The interface of the model at ``spec`` (folder, hub name or packaged:NAME) for ``task``."""
    from transformers import AutoConfig

    from compress.model.loading import load_tokenizer, resolve_model_path

    path = resolve_model_path(spec)
    if task_spec(task).pooled and is_sentence_transformers_folder(path):
        return _read_sentence_transformers(Path(path), task, spec)  # the config's spelling, not site-packages
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the config of '{spec}': {str(exc).splitlines()[0][:200]}") from None
    from compress.model.checks import position_limit

    limit = position_limit(config) or 512
    tok_max = getattr(load_tokenizer(spec), "model_max_length", None) or limit
    max_len = int(min(limit, tok_max if tok_max < 10**6 else limit))
    kind = task_spec(task)
    return ModelInterface(task=task, pooling=DEFAULT_POOLING if kind.pooled else None, normalize=False,
                          max_seq_length=max_len, id2label=_named_labels(config) if kind.class_names else None,
                          source=str(spec))


# ------------------------------------------------------------------------------ applying it


def sentence_modules(interface: ModelInterface, dim: int) -> list["torch.nn.Module"]:
    """sentence-transformers' own Pooling (+ Normalize) modules for this interface, width ``dim``."""
    mods = st_modules()
    Normalize, Pooling = mods.Normalize, mods.Pooling

    modes = interface.pooling_modes
    pool = Pooling(dim, pooling_mode=modes[0] if len(modes) == 1 else tuple(modes))
    return [pool, Normalize()] if interface.normalize else [pool]


class SentencePooler:
    """token vectors + attention mask -> sentence embedding, with sentence-transformers' modules.

    ``pooled`` is the Pooling output (before Normalize); ``__call__`` is what the model returns.
    """

    def __init__(self, interface: ModelInterface, dim: int) -> None:
        mods = sentence_modules(interface, dim)
        self.pool, self.normalize = mods[0], (mods[1] if len(mods) > 1 else None)

    def pooled(self, hidden: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
        return self.pool({"token_embeddings": hidden, "attention_mask": attention_mask})["sentence_embedding"]

    def __call__(self, hidden: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
        emb = self.pooled(hidden, attention_mask)
        if self.normalize is not None:
            emb = self.normalize({"sentence_embedding": emb})["sentence_embedding"]
        return emb


def sentence_vectors(hidden: "torch.Tensor", attention_mask: "torch.Tensor",
                     interface: ModelInterface | None = None) -> "torch.Tensor":
    """Token vectors -> sentence vectors as ``interface`` (the teacher's) pools and normalises them (mean when None):
    the one pooling for losses, importance, evaluation and export."""
    iface = interface if interface is not None and interface.pooling is not None else ModelInterface("embedding")
    return SentencePooler(iface, int(hidden.shape[-1]))(hidden, attention_mask)


def hidden_size(config: Any) -> int:
    return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))


def save_model(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", interface: ModelInterface,
               folder: Path) -> Path:
    """save_pretrained (safetensors + tokenizer) and, for a sentence-transformers teacher, its module stack.

    The sentence-transformers files are written by sentence-transformers itself (``SentenceTransformer.save``)
    from the saved folder, so ``SentenceTransformer(folder)`` pools, normalises and truncates like the teacher.
    """
    from compress.model.loading import base_model

    from compress.core.fsio import check_free_space, writing

    folder = Path(folder)
    kind = task_spec(interface.task)
    to_save = base_model(model) if kind.pooled else model
    folder.mkdir(parents=True, exist_ok=True)
    weights = sum(t.numel() * t.element_size() for t in to_save.state_dict().values())
    check_free_space(folder, weights)  # the weights' size is known: refuse before writing half of them
    with writing(folder / "model.safetensors", needs=weights):
        to_save.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if kind.class_names and interface.id2label:
        _write_labels(folder, interface.id2label)
    if interface.sentence_transformers and kind.pooled:
        from sentence_transformers import SentenceTransformer

        first = st_modules().Transformer(str(folder), max_seq_length=interface.max_seq_length, do_lower_case=interface.do_lower_case)
        st = SentenceTransformer(modules=[first, *sentence_modules(interface, hidden_size(to_save.config))], device="cpu")
        st.save(str(folder))
    (folder / INTERFACE_FILE).write_text(json.dumps(interface.to_dict(), indent=2) + "\n")
    return folder


INTERFACE_FILE = "edgepress_interface.json"


def _write_labels(folder: Path, id2label: dict[int, str]) -> None:
    """Make config.json's id2label/label2id the interface's names (a deep-copied teacher already has them)."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg["id2label"] = {str(k): v for k, v in sorted(id2label.items())}
    cfg["label2id"] = {v: k for k, v in sorted(id2label.items())}
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def derived_interface(source: ModelInterface, model: Any, tokenizer: Any, dev: Any, max_length: int) -> ModelInterface:
    """``source``'s interface for a model made from it (distilled, pruned): same pooling, labels and length;
    a QA model gets its own no-answer threshold, tuned on ``dev``, since a smaller model's null scores shift."""
    if task_spec(source.task).outputs != "answers" or dev is None or not len(dev):
        return source
    from dataclasses import replace

    from compress.tasks.qa import tuned_null_threshold

    return replace(source, null_threshold=tuned_null_threshold(model, tokenizer, dev, max_length)["threshold"])


def saved_interface(folder: str | Path) -> ModelInterface | None:
    """The interface edgepress saved in ``folder`` (edgepress_interface.json), None when there is none."""
    saved = Path(folder) / INTERFACE_FILE
    return ModelInterface.from_dict(json.loads(saved.read_text())) if saved.is_file() else None


def interface_of(folder: str | Path, task: str) -> ModelInterface:
    """The interface saved beside a model edgepress wrote, else read from the folder (or hub name) itself."""
    from compress.model.loading import resolve_model_path

    iface = saved_interface(resolve_model_path(str(folder)))
    if iface is not None and iface.task == task:
        return iface
    return read_interface(str(folder), task)
