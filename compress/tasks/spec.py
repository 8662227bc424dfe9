"""What a task is: one ``TaskSpec`` per task (one file each in ``compress/tasks/``), read by every stage.

A spec owns the head (model class, outputs, export names), the task metric on labelled rows and the fidelity
to a reference model (one name per task, used by the quantize guard, the search, distillation and the bench
report alike), the Optimum task and the model card's pipeline tag, and the flags stages branch on.
This module holds the types only; the registry (``compress.tasks.TASKS``) imports the task files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from compress.core.refs import resolve

if TYPE_CHECKING:
    import numpy as np

Outputs = dict  # a model's outputs on eval rows: "a" (per row / word / question), "b" (embedding pairs' 2nd side)


@dataclass(frozen=True)
class OutputSpec:
    """One named output: its symbolic shape and what an app should do with it."""

    name: str
    shape: tuple[str, ...]
    meaning: str


@dataclass(frozen=True)
class HeadSpec:
    """A task head: which transformers class loads it, what it outputs, which formats can carry it."""

    task: str
    auto_class: str
    outputs: tuple[OutputSpec, ...]
    formats: tuple[str, ...] | None = None  # the export formats that can carry it; None: every registered format
    weights: tuple[str, ...] = ()  # parts of the head's weight names: a checkpoint missing them has no trained head

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def carries(self, fmt: str) -> bool:
        """Whether export format ``fmt`` can carry this head (a format registered after import too)."""
        from compress.model.formats import FORMATS

        return fmt in (FORMATS if self.formats is None else self.formats)


@dataclass(frozen=True)
class Gold:
    """What eval rows know besides their text: labels (class ids or scores), whether they are sentence pairs,
    tags per word with each row's word count and the model's tag names, or QA examples (ids, gold answers)."""

    labels: Sequence[Any] | None = None
    pairs: bool = False
    tags: list[list[str]] | None = None
    word_counts: list[int] | None = None
    label_names: list[str] | None = None
    examples: list[Any] | None = None


@dataclass(frozen=True)
class Score:
    """A task metric's value on gold rows, with the library's other numbers for the same rows."""

    metric: str
    value: float
    extra: dict[str, float]


@dataclass(frozen=True)
class TaskSpec:
    """Everything the toolkit knows about one task.

    ``score`` returns the task metric on gold rows (None when the rows hold no gold for it); ``agreement``
    compares a model's outputs with a reference model's on the same rows, reported as ``fidelity``.
    """

    name: str
    head: HeadSpec
    metric: str | None  # the task metric's name on labelled rows (mlm: none)
    fidelity: str  # the one name of the agreement with a reference model
    score: Callable[[Outputs, Gold], Score | None]
    agreement: Callable[[Outputs, Outputs], float]
    optimum_task: str  # optimum's task name (main_export, ORTModelFor<Task>)
    pipeline_tag: str  # the Hugging Face hub's pipeline tag for the model card
    token_level: bool = False  # outputs per token, trained on pre-tokenized rows
    cached: bool = False  # one pooled vector / one logit row per sentence: the teacher's outputs can be cached
    static_calibration: bool = False  # static int8 calibrates on sentences (pairs)
    train_labels: bool = True  # training reads the train split's labels (so they count in its digest)
    full_scale: float = 1.0  # the metric's best value (SQuAD's F1 is a percentage)
    has_gold: Callable[[Gold], bool] = lambda gold: gold.labels is not None  # rows the task metric can score
    agreement_extra: Callable[[Outputs, Outputs], dict[str, float]] | None = None  # reports' other agreement numbers
    gold: str | None = "labels"  # what gold rows hold for the metric (bench report's data kind): labels | tags | spans | sts
    outputs: str = "logits"  # what a model gives per eval row: logits | pooled (sentence vector) | tokens | words | answers
    model_score: Callable[..., Score] | None = None  # token tasks: the metric of a PyTorch model read on its own rows
    class_names: bool = False  # the head's id2label names classes (labels.json, the interface's labels)
    scores: bool = False  # one real-valued score per row (regression), not class logits
    recovery_loss: tuple[tuple[str, float], ...] = (("kl", 1.0), ("cos", 1.0))  # prune recovery's default loss mix
    ort_class: str | None = None  # optimum.onnxruntime's class; None: the model card shows no transformers/optimum code
    unlabeled_text: bool = False  # distills on unlabelled text too (data.unlabeled, prune.recovery.unlabeled)
    example: str = "A sentence to embed."  # the input the model card's and the bundle's example code runs
    label_kind: str | None = None  # what data.label_column holds in sentence rows: classes (ids or names) | scores
    # "module:function" (or the function): (data_cfg, seed, *, task, **class_checks) -> Splits (the run's split)
    loader: str | Callable[..., Any] = "compress.data.rows:load_sentence_splits"
    # "module:Class" (or the class) of a split's rows: to_columns(), attrs(), from_columns(cols, attrs) (data artifact)
    rows: str | type = "compress.data.rows:TextData"
    # "module:function" (or the function): one eval file (source, task, text, pair, label column) -> rows
    reader: str | Callable[..., Any] = "compress.data.rows:read_sentence_rows"
    no_head_hint: str = "fine-tune it first: add 'finetune' to stages (or `edgepress finetune`)"  # a head is missing

    def load(self, data_cfg: Any, seed: int, **options: Any) -> Any:
        """The task's train/eval/test splits (``options``: the class-label checks of ``compress.data.rows.load_splits``)."""
        return resolve(self.loader)(data_cfg, seed, task=self.name, **options)

    def read(self, source: str, text_column: str = "text", pair_column: str | None = None,
             label_column: str | None = None) -> Any:
        """The rows of one eval file (bench --data), with gold labels where the file holds them."""
        return resolve(self.reader)(source, self.name, text_column, pair_column, label_column)

    def rows_from_columns(self, cols: dict[str, list[Any]], attrs: dict[str, Any]) -> Any:
        """A split's rows rebuilt from the columns the run's data artifact stored (its ``rows`` class)."""
        return resolve(self.rows).from_columns(cols, attrs)

    @property
    def pooled(self) -> bool:
        """Sentence vectors pooled from the encoder's last hidden state (the embedding head)."""
        return self.outputs == "pooled"

    @property
    def sentence_logits(self) -> bool:
        """One logits row per sentence (pair): classification and regression heads."""
        return self.outputs == "logits"


def row_argmax(x: "np.ndarray") -> "np.ndarray":
    """Class ids from logits (already ids when 1-D)."""
    import numpy as np

    x = np.asarray(x)
    return x if x.ndim == 1 else x.argmax(-1)
