"""Sentence rows (text, optional pair, optional labels) for every sentence-level task, and each task's splits.

Sources are read into columns by :mod:`compress.data.files` (files through Hugging Face ``datasets``, hub
datasets, the built-in demo corpus) and split by :mod:`compress.data.split`; this module turns columns into
rows and dispatches every task to its spec's loader (``TaskSpec.loader``: this module's for sentence rows,
:mod:`compress.tasks.ner` and :mod:`compress.tasks.qa` for theirs); how labels are read is the spec's ``label_kind``.

Classification labels are integer class ids or class names (``positive``, ``Sci/Tech``); names get
ids from a given ``label2id`` or, as transformers' run_glue does, from the sorted names of the train
split. Data that cannot train what was asked (one class, constant scores, labels that do not parse,
a file that is not UTF-8) is refused with the file and row.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from compress.data.files import BUILTIN_CORPORA, Columns, QuietDatasets, arrow_dataset, read_columns
from compress.data.files import builtin_pydoc_sentences, parse_hub_spec  # noqa: F401 - callers import them from here
from compress.data.split import Splits, announce_cut, capped_splits, carve_splits, eval_split_ids
from compress.core.errors import DataError
from compress.tasks import task_spec

_INT = re.compile(r"^[+-]?\d+$")


@dataclass
class TextData:
    """Parallel lists: sentences, optional second sentences (pairs), optional labels.

    ``label_names[i]`` is the class name of label id ``i`` when the file gave names (None for integer
    labels and for non-classification data).
    """

    texts: list[str]
    pairs: list[str] | None = None
    labels: list[Any] | None = None
    source: str = ""
    label_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> "TextData":
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        return TextData([self.texts[i] for i in idx], pick(self.pairs), pick(self.labels), self.source,
                        self.label_names)

    def head(self, n: int | None) -> "TextData":
        return self if n is None or n >= len(self) else self.subset(list(range(n)))

    def to_columns(self) -> dict[str, list[Any]]:
        """The rows as columns (text[, pair][, label]), for the run's data artifact."""
        cols: dict[str, list[Any]] = {"text": self.texts}
        if self.pairs is not None:
            cols["pair"] = self.pairs
        if self.labels is not None:
            cols["label"] = self.labels
        return cols

    def attrs(self) -> dict[str, Any]:
        """What the columns do not hold: the source and the class names by id."""
        return {"source": self.source, "label_names": self.label_names}

    @classmethod
    def from_columns(cls, cols: dict[str, list[Any]], attrs: dict[str, Any]) -> "TextData":
        """Rows back from :meth:`to_columns` and :meth:`attrs` (a streamed train split: its text and pair columns)."""
        return cls(list(cols["text"]), cols.get("pair"), cols.get("label"), attrs.get("source", ""),
                   attrs.get("label_names"))


# ---------------------------------------------------------------- columns and labels


def _column(cols: Columns, name: str, source: str, role: str, header: bool) -> list[Any]:
    if name not in cols.data:
        hint = (" (data.header is false: columns are named by position, e.g. data.text_column: '0')"
                if not header else "")
        raise DataError(f"data '{source}': {role} column '{name}' not found; columns are: "
                        f"{', '.join(map(str, cols.names))} (set data.{role}_column){hint}")
    return cols.data[name]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _texts(raw: list[Any], source: str, role: str) -> list[str]:
    out = []
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise DataError(f"data '{source}' row {i + 1}: the {role} cell is empty")
        out.append(str(v))
    return out


def _float_labels(raw: list[Any], source: str) -> list[float]:
    out = []
    for i, v in enumerate(raw):
        try:
            if isinstance(v, bool) or _missing(v):
                raise ValueError
            f = float(v)
            if not math.isfinite(f):
                raise ValueError
        except (TypeError, ValueError):
            raise DataError(f"data '{source}' row {i + 1}: label {v!r} is not a number (regression / similarity "
                            "scores must be numbers)") from None
        out.append(f)
    return out


def _is_class_id(v: Any) -> bool:
    return ((isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
            or (isinstance(v, str) and bool(_INT.match(v.strip()))))


def _class_labels(raw: list[Any], source: str, label2id: dict[str, int] | None,
                  names: list[str] | None, column: str = "label") -> tuple[list[int], list[str] | None]:
    """Integer class ids, or class names mapped to ids; returns (ids, names or None). A column mixing both kinds
    is refused: the ids would be read as names and get ids of their own."""
    for i, v in enumerate(raw):
        if _missing(v):
            raise DataError(f"data '{source}' row {i + 1}: the label cell is empty")
    kinds = [_is_class_id(v) for v in raw]
    as_int = all(kinds)
    if not as_int and any(kinds):
        i, j = kinds.index(True), kinds.index(False)
        raise DataError(f"data '{source}': label column '{column}' mixes integer class ids ({raw[i]!r}, row {i + 1}) "
                        f"and class names ({raw[j]!r}, row {j + 1}); use one kind of label throughout the column")
    if as_int:
        ids = [int(v.strip()) if isinstance(v, str) else int(v) for v in raw]
        for i, v in enumerate(ids):
            if v < 0:
                raise DataError(f"data '{source}' row {i + 1}: label {v} is not a class id (ids are 0, 1, ...)")
        return ids, names
    for i, v in enumerate(raw):
        if not isinstance(v, str):
            raise DataError(f"data '{source}' row {i + 1}: label {v!r} is neither an integer class id nor a class "
                            "name; use one kind of label throughout the column")
    if label2id is None:
        known = sorted({v.strip() for v in raw})
        label2id = {n: k for k, n in enumerate(known)}
    ids = []
    for i, v in enumerate(raw):
        key = v.strip()
        if key not in label2id:
            shown = ", ".join(sorted(label2id, key=label2id.get)[:20])
            raise DataError(f"data '{source}' row {i + 1}: label '{key}' is not a known class name (known: {shown})")
        ids.append(label2id[key])
    return ids, [n for n, _ in sorted(label2id.items(), key=lambda kv: kv[1])]


def load_text_data(source: str, text_column: str, text_pair_column: str | None = None,
                   label_column: str | None = None, task: str = "embedding", limit: int | None = None,
                   header: bool = True, label2id: dict[str, int] | None = None) -> TextData:
    """Read a source into TextData, checking the named columns exist and labels parse.

    Class labels (the spec's ``label_kind`` "classes") may be integer ids or class names (mapped through
    ``label2id`` if given, else sorted); scores (regression, embedding's STS) are numbers; a task without a
    ``label_kind`` reads no labels. A ``.txt`` file has one column: its lines.
    """
    cols = read_columns(source, header)
    if source in BUILTIN_CORPORA or (not source.startswith("hub:") and Path(source).suffix.lower() == ".txt"):
        text_column, text_pair_column, label_column = "text", None, None
    texts = _texts(_column(cols, text_column, source, "text", header), source, "text")
    pairs = (_texts(_column(cols, text_pair_column, source, "text_pair", header), source, "text_pair")
             if text_pair_column else None)
    labels, names = None, None
    kind = task_spec(task).label_kind
    if label_column and kind is not None:
        raw = _column(cols, label_column, source, "label", header)
        if kind == "classes":
            labels, names = _class_labels(raw, source, label2id, cols.class_names.get(label_column), label_column)
        else:
            labels = _float_labels(raw, source)
    return TextData(texts, pairs, labels, source, names).head(limit)


def _check_trainable(train: TextData, task: str, source: str) -> None:
    """Refuse labels that cannot train the task: a single class, or scores that never vary."""
    spec = task_spec(task)
    if train.labels is None or not spec.train_labels:
        return
    if spec.label_kind == "classes":
        classes = sorted(set(train.labels) - {UNLABELED})
        if len(classes) < 2:
            shown = train.label_names[classes[0]] if classes and train.label_names else (classes[0] if classes else "none")
            raise DataError(f"training data '{source}' has a single class ({shown!r}) in its label column: "
                            f"{task} needs at least two classes; check data.label_column and the file")
    elif spec.label_kind == "scores" and len(set(train.labels)) < 2:
        raise DataError(f"training data '{source}' has the same score ({train.labels[0]}) on every row: "
                        f"{task} needs scores that vary; check data.label_column and the file")


def check_class_ids(data: TextData, column: str, num_labels: int, head: str) -> None:
    """Refuse a class id the model head has no logit for (ids are 0 .. num_labels - 1), naming file, column, row."""
    for i, v in enumerate(data.labels or []):
        if v != UNLABELED and not 0 <= v < num_labels:
            shown = (f"{data.label_names[v]!r} (class id {v})" if data.label_names and 0 <= v < len(data.label_names)
                     else f"class id {v}")
            names = f": {', '.join(data.label_names[:num_labels][:20])}" if data.label_names else ""
            raise DataError(f"data '{data.source}' row {i + 1}: label column '{column}' holds {shown}, but {head} has "
                            f"{num_labels} classes (ids 0-{num_labels - 1}{names}); fix the file or the model")


def load_splits(data_cfg: Any, task: str, seed: int, label2id: dict[str, int] | None = None,
                num_labels: int | None = None, head: str = "", fine_tuned: bool = False) -> Splits:
    """Train/eval/test per the data config; eval is split off train when not given.

    Class names map to ids through ``label2id`` when given (e.g. a trained head's), else through the
    sorted names of the train split; an eval/test name the train split lacks is refused. The run calls it once, at its
    split (:mod:`compress.data.artifact` stores the rows every stage reads).
    ``num_labels`` (the model head's class count, described by ``head``) refuses a class id outside it in any
    file; ``fine_tuned`` checks against the head a fine-tune makes from the train file (teacher.num_labels, else
    one class per distinct train label). The task's spec reads them (``TaskSpec.loader``).
    """
    return task_spec(task).load(data_cfg, seed, label2id=label2id, num_labels=num_labels, head=head,
                                fine_tuned=fine_tuned)


def load_sentence_splits(data_cfg: Any, seed: int, task: str = "embedding",
                         label2id: dict[str, int] | None = None, num_labels: int | None = None, head: str = "",
                         fine_tuned: bool = False) -> Splits:
    """:func:`load_splits` for sentence rows (the loader of every task whose spec names no other)."""
    spec = task_spec(task)
    header = getattr(data_cfg, "header", True)
    kw = dict(text_column=data_cfg.text_column, text_pair_column=data_cfg.text_pair_column,
              label_column=data_cfg.label_column, task=task, header=header)
    if spec.train_labels and not data_cfg.label_column:
        raise DataError(f"task '{task}' needs labels: set data.label_column")
    train = load_text_data(data_cfg.train, label2id=label2id, **kw)
    if label2id is None and train.label_names is not None:
        label2id = {n: i for i, n in enumerate(train.label_names)}
    names = train.label_names
    classes = spec.label_kind == "classes"
    checked = classes and (num_labels is not None or fine_tuned)
    if checked:
        if num_labels is None:  # the head finetune makes: one class per distinct train label
            num_labels = len(names) if names else len(set(train.labels or []) - {UNLABELED})
        head = head or f"the head fine-tuned on '{data_cfg.train}'"
        check_class_ids(train, data_cfg.label_column, num_labels, head)

    def other(source: str) -> TextData:
        d = load_text_data(source, label2id=label2id, **kw)
        if classes and (d.label_names is None) != (names is None):
            kinds = ("class names", "integer ids") if names is not None else ("integer ids", "class names")
            raise DataError(f"data '{source}': labels are {kinds[1]}, but the training file '{data_cfg.train}' "
                            f"uses {kinds[0]}; use one kind in every split")
        d.label_names = names
        if checked:
            check_class_ids(d, data_cfg.label_column, num_labels, head)
        return d

    splits = carve_splits(data_cfg, seed, train, other)
    if len(splits.train) == 0:
        raise DataError(f"training data '{data_cfg.train}' has no rows left after the eval split")
    _check_trainable(splits.train.head(data_cfg.max_train_samples), task, data_cfg.train)
    return capped_splits(splits, data_cfg)


def distillation_texts(train: TextData, extra: Sequence[Any] = ()) -> list[str]:
    """Every distinct sentence for unlabelled distillation: train texts, pairs, and the data.unlabeled corpora
    (``extra``: :func:`unlabeled_corpora`, as the run's data artifact holds them)."""
    texts = list(train.texts) + list(train.pairs or [])
    for corpus in extra:
        texts += corpus["text"]
    return list(dict.fromkeys(t for t in texts if t.strip()))


UNLABELED = -100  # label of a row with no gold label: the hard-label loss skips it (CrossEntropy's ignore_index)


def with_unlabeled(data_cfg: Any, train: TextData, extra: Sequence[Any] = ()) -> TextData:
    """Labelled train rows plus the data.unlabeled sentences (``extra``, label UNLABELED) for classification
    distillation.

    The teacher's soft labels and hidden states supervise every row; only labelled rows add the hard
    loss. Sentences already in the labelled rows are not repeated.
    """
    if not extra:
        return train
    if train.pairs is not None:
        raise DataError("data.unlabeled adds single sentences, but this task's training rows are sentence pairs "
                        f"(data.text_pair_column={data_cfg.text_pair_column!r}); remove data.unlabeled")
    seen = set(train.texts)
    added = [t for t in distillation_texts(TextData([]), extra) if t not in seen]
    return TextData(list(train.texts) + added, None, list(train.labels or []) + [UNLABELED] * len(added),
                    source=train.source, label_names=train.label_names)


def distillation_train(data_cfg: Any, task: str, train: TextData, extra: Sequence[Any] = ()) -> TextData:
    """What distillation (and QAT) trains on: every sentence plus the data.unlabeled corpora (``extra``) for
    label-free tasks (embedding, mlm), labelled rows plus unlabelled ones for a labelled task that distills on text
    (classification), the labelled rows otherwise."""
    spec = task_spec(task)
    if not spec.train_labels:
        return TextData(distillation_texts(train, extra), source=train.source)
    if spec.unlabeled_text:
        return with_unlabeled(data_cfg, train, extra)
    return train


def unlabeled_corpora(data_cfg: Any, cache_dir: Path) -> list[Any]:
    """Each data.unlabeled source as a memory-mapped ``datasets.Dataset`` with one "text" column, cut to its
    ``limit`` (read once, by the run's split, into its data artifact); an empty text cell is refused."""
    import pyarrow.compute as pc

    out = []
    for src in data_cfg.unlabeled:
        hdr = getattr(src, "header", True)
        d = _text_columns(arrow_dataset(src.source, Path(cache_dir), hdr), src.source, src.text_column, None, hdr)
        d = d.select(range(min(src.limit, len(d)))) if src.limit else d
        column = d.data.column("text")
        if column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise DataError(f"data '{src.source}' row {row + 1}: the text cell is empty")
        out.append(d)
    return out


# ---------------------------------------------------------------- corpus scale: Arrow on disk, memory-mapped
#
# The distill stage reads its training rows (embedding/mlm train split, every data.unlabeled source) as
# memory-mapped Arrow datasets: `datasets` converts a file once into its cache folder (keyed by the file's
# path and modification time, reused by re-runs) and rows are then read from disk as the trainer asks for
# them, so memory does not grow with the corpus. Deduplication hashes every row (64-bit BLAKE2b, the teacher
# cache's text key) into an int64 column and keeps first occurrences with numpy (8 bytes a row, no Python
# set of strings). The small eval/test splits stay TextData.


@dataclass
class StreamedSplits:
    """Splits for corpus-scale distillation: ``train`` a memory-mapped ``datasets.Dataset`` ("text"[, "pair"])."""

    train: Any
    eval: TextData
    test: TextData
    label_names: list[str] | None = None
    source_rows: int = 0  # rows of the train file before the eval split was taken out
    eval_ids: Any = None  # the train file's rows that became the eval split (None: eval is its own file)


def _check_column(ds: Any, name: str, source: str, role: str, header: bool) -> None:
    if name not in ds.column_names:
        hint = (" (data.header is false: columns are named by position, e.g. data.text_column: '0')"
                if not header else "")
        raise DataError(f"data '{source}': {role} column '{name}' not found; columns are: "
                        f"{', '.join(map(str, ds.column_names))} (set data.{role}_column){hint}")


def _text_columns(ds: Any, source: str, text_column: str, pair_column: str | None, header: bool):
    """Only the text (and pair) columns, renamed "text" / "pair" (string type)."""
    import datasets

    if source in BUILTIN_CORPORA or (not source.startswith("hub:") and Path(source).suffix.lower() == ".txt"):
        text_column, pair_column = "text", None
    _check_column(ds, text_column, source, "text", header)
    keep = {text_column: "text"}
    if pair_column:
        _check_column(ds, pair_column, source, "text_pair", header)
        keep[pair_column] = "pair"
    ds = ds.select_columns(list(keep))
    for old, new in keep.items():
        if ds.features[old] != datasets.Value("string"):
            ds = ds.cast_column(old, datasets.Value("string"))
        if old != new:
            ds = ds.rename_column(old, new)
    return ds


def _rows_to_textdata(ds: Any, source: str, label_column: str | None, task: str, header: bool) -> TextData:
    cols = ds.to_dict()
    texts = _texts(cols["text"], source, "text")
    pairs = _texts(cols["pair"], source, "text_pair") if "pair" in cols else None
    labels = _float_labels(cols["label"], source) if "label" in cols and task_spec(task).label_kind else None
    return TextData(texts, pairs, labels, source)


def load_distill_splits(data_cfg: Any, task: str, seed: int, cache_dir: Path,
                        label2id: dict[str, int] | None = None, num_labels: int | None = None,
                        head: str = "") -> "Splits | StreamedSplits":
    """The distill stage's splits: for label-free tasks (embedding, mlm) the train split is a memory-mapped Arrow
    dataset (the same rows, eval split and limits as :func:`load_splits`); labelled tasks use :func:`load_splits`
    (class ids checked against ``num_labels`` when given)."""
    spec = task_spec(task)
    if spec.train_labels:
        return load_splits(data_cfg, task, seed, label2id, num_labels=num_labels, head=head)
    header = getattr(data_cfg, "header", True)
    raw = arrow_dataset(data_cfg.train, Path(cache_dir), header)
    label_col = data_cfg.label_column if spec.label_kind else None
    if label_col and data_cfg.train not in BUILTIN_CORPORA and Path(data_cfg.train).suffix.lower() != ".txt":
        _check_column(raw, label_col, data_cfg.train, "label", header)
    full = _text_columns(raw, data_cfg.train, data_cfg.text_column, data_cfg.text_pair_column, header)
    kw = dict(text_column=data_cfg.text_column, text_pair_column=data_cfg.text_pair_column,
              label_column=data_cfg.label_column, task=task, header=header)

    def rows(idx) -> TextData:  # eval rows of the train file, with their labels (STS scores)
        sel = full.select(idx)
        if label_col and label_col in raw.column_names:
            sel = sel.add_column("label", raw.select(idx)[label_col])
        return _rows_to_textdata(sel, data_cfg.train, label_col, task, header)

    eval_idx = None
    if data_cfg.eval:
        ev, train = load_text_data(data_cfg.eval, **kw), full
        eval_rows = len(ev)
    else:
        eval_idx, train_idx = eval_split_ids(len(full), data_cfg.eval_fraction, seed)
        ev, train = rows(eval_idx[:data_cfg.max_eval_samples] if data_cfg.max_eval_samples else eval_idx), \
            full.select(train_idx)
        eval_rows = len(eval_idx)
    ev = ev.head(data_cfg.max_eval_samples)
    test = load_text_data(data_cfg.test, **kw) if data_cfg.test else ev  # a test file is kept whole (see capped_splits)
    if len(train) == 0:
        raise DataError(f"training data '{data_cfg.train}' has no rows left after the eval split")
    train_rows = len(train)
    if data_cfg.max_train_samples and data_cfg.max_train_samples < len(train):
        train = train.select(range(data_cfg.max_train_samples))
    announce_cut("train", len(train), train_rows, "data.max_train_samples")
    announce_cut("eval", len(ev), eval_rows, "data.max_eval_samples")
    return StreamedSplits(train, ev, test, source_rows=len(full), eval_ids=eval_idx)


def _keyed(ds: Any, source: str):
    """Adds the int64 "key" column (text key of text + pair; 0 for a blank text), refusing empty cells."""
    from compress.distill.cache import text_key

    has_pair = "pair" in ds.column_names

    def fn(batch, idx):
        keys = []
        for j, t in enumerate(batch["text"]):
            p = batch["pair"][j] if has_pair else None
            if t is None or (has_pair and p is None):
                raise DataError(f"data '{source}' row {idx[j] + 1}: the {'text' if t is None else 'text_pair'} "
                                "cell is empty")
            keys.append(text_key(t, p) if t.strip() else 0)
        return {"key": keys}

    with QuietDatasets():
        return ds.map(fn, batched=True, batch_size=10_000, with_indices=True)


def _first_unique(ds: Any, exclude=None):
    """Rows of a keyed dataset whose key is not blank (0), not in ``exclude``, and not seen earlier."""
    import numpy as np

    keys = ds.data.column("key").to_numpy()
    _, first = np.unique(keys, return_index=True)
    first.sort()
    first = first[keys[first] != 0]
    if exclude is not None and len(exclude):
        first = first[~np.isin(keys[first], exclude)]
    return first


def distillation_dataset(data_cfg: Any, task: str, train: "TextData | Any", extra: Sequence[Any] = ()):
    """:func:`distillation_train` as a ``datasets.Dataset`` ("text"[, "pair"][, "labels"], "key"), memory-mapped
    where the rows are (a streamed train split, the data.unlabeled corpora ``extra``): the same rows in the same
    order, deduplicated by text key."""
    import datasets

    def from_textdata(t: TextData, labels: bool):
        cols: dict[str, Any] = {"text": list(t.texts)}
        if t.pairs is not None:
            cols["pair"] = list(t.pairs)
        if labels and t.labels is not None:
            cols["labels"] = list(t.labels)
        return datasets.Dataset.from_dict(cols)

    spec = task_spec(task)
    if not spec.train_labels:
        base = train if not isinstance(train, TextData) else from_textdata(train, labels=False)
        parts = [base.select_columns(["text"])]
        if "pair" in base.column_names:
            parts.append(base.select_columns(["pair"]).rename_column("pair", "text"))
        ds = _keyed(datasets.concatenate_datasets(parts + list(extra)), "distillation rows")
        keep = _first_unique(ds)
        return ds if len(keep) == len(ds) else ds.select(keep)
    labelled = _keyed(from_textdata(train, labels=True), train.source)
    if not spec.unlabeled_text or not extra:
        return labelled
    if train.pairs is not None:
        raise DataError("data.unlabeled adds single sentences, but this task's training rows are sentence pairs "
                        f"(data.text_pair_column={data_cfg.text_pair_column!r}); remove data.unlabeled")
    added = _keyed(datasets.concatenate_datasets(list(extra)), "data.unlabeled")
    keep = _first_unique(added, exclude=labelled.data.column("key").to_numpy())
    added = added.select(keep)
    import numpy as np

    added = added.add_column("labels", np.full(len(added), UNLABELED, dtype=np.int64))
    added = added.select_columns(labelled.column_names).cast(labelled.features)
    return datasets.concatenate_datasets([labelled, added])


def read_sentence_rows(source: str, task: str, text_column: str = "text", pair_column: str | None = None,
                       label_column: str | None = None) -> TextData:
    """One eval file's sentence rows (bench --data), labels read as the task's spec says (``TaskSpec.reader``)."""
    return load_text_data(source, text_column, pair_column, label_column, task=task)
