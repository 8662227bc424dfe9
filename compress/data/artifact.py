"""The run's data artifact: the data split once, as rows, with a content digest of each split.

The pipeline writes ``runs/<name>/data/`` before its first stage: ``rows/<split>/`` (each split's rows as an Arrow
dataset, labels already mapped to the ids of the head the run uses; a label-free train split as the corpus itself),
``splits.json`` (the digest, row count and source of each split, and what the rows do not hold: class names, tag
names, QA windowing) and ``eval_ids.npy`` when the eval split was carved out of the train file. Every stage gets it
as ``inputs.data`` (:class:`RunData`) and takes its rows from there (:meth:`RunData.splits`); no stage reads a data
file itself. A file edited between runs gives a new digest, which joins the hash of every stage that reads data,
so those stages run again instead of reusing results made from other rows.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    import numpy as np

    from compress.data.rows import TextData

SPLITS_DIR = "data"
SPLITS_FILE = "splits.json"
EVAL_IDS_FILE = "eval_ids.npy"
ROWS_DIR = "rows"
UNLABELED_DIR = "unlabeled"  # under ROWS_DIR: the data.unlabeled corpora, one folder each
SOURCES_DIR = "sources"  # the run's copy of each source a stage reads itself (compress.data.files.reading_sources)
SPLITS = ("train", "eval", "test")


def _label_text(data: "TextData", label: Any) -> str:
    """A label as the data gave it: the class name when the file used names, else the number (tags: joined)."""
    if isinstance(label, list):
        return " ".join(map(str, label))
    if data.label_names is not None and isinstance(label, int) and 0 <= label < len(data.label_names):
        return data.label_names[label]
    return repr(float(label)) if isinstance(label, (int, float)) and not isinstance(label, bool) else str(label)


def _update(h: Any, texts: Any, pairs: Any = None, labels: list[str] | None = None) -> None:
    for i, text in enumerate(texts):
        h.update(str(text).encode())
        h.update(b"\x1f" + (str(pairs[i]).encode() if pairs is not None else b""))
        h.update(b"\x1f" + (labels[i].encode() if labels is not None else b"") + b"\x1e")


def split_digest(data: "TextData | Any", with_labels: bool) -> str:
    """SHA-256 over the rows (text, pair, label as text) in order: equal iff the same rows in the same order.

    ``data`` is TextData or a memory-mapped ``datasets.Dataset`` ("text"[, "pair"], read in batches); both forms
    of the same rows digest alike (a Dataset carries no labels: only train splits of unlabelled tasks are one)."""
    h = hashlib.sha256()
    if not hasattr(data, "texts"):
        for batch in data.select_columns([c for c in ("text", "pair") if c in data.column_names]).iter(10_000):
            _update(h, batch["text"], batch.get("pair"))
        return h.hexdigest()
    labels = [_label_text(data, v) for v in data.labels] if with_labels and data.labels is not None else None
    _update(h, data.texts, data.pairs, labels)
    return h.hexdigest()


def labels_in_digest(task: str, split: str) -> bool:
    """Train labels count only where training uses them; eval/test labels (gold scores, classes) always count."""
    from compress.tasks import task_spec

    return split != "train" or task_spec(task).train_labels


@dataclass
class RunData:
    """A run's data artifact, read back: each split's rows, digests per split and, when eval comes from train,
    its row ids. ``held``: the same rows in memory instead of on disk (the splits and corpora a rank other than
    the first made itself, while the first writes them; see :func:`split_in_memory`)."""

    folder: Path
    meta: dict[str, Any]
    held: tuple[Any, list[Any]] | None = None

    @property
    def digest(self) -> str:
        """One digest of the split rows (joins the hash of every stage that reads data). The data section itself is
        not in it: each stage's hash covers the fields it reads (finetune's hashes data.unlabeled at its default)."""
        rows = {k: v for k, v in self.meta.items() if k not in ("config", "unlabeled")}
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]

    def eval_ids(self) -> "np.ndarray | None":
        import numpy as np

        if self.held is not None:
            return self.held[0].eval_ids
        path = self.folder / EVAL_IDS_FILE
        return np.load(path, allow_pickle=False) if self.meta.get("eval_from_train") else None

    def splits(self, streamed: bool = False) -> Any:
        """The run's train/eval/test rows (``compress.data.split.Splits``), as the task's rows type. ``streamed``: a
        label-free train split stays the memory-mapped corpus (``compress.data.rows.StreamedSplits``, distillation)
        instead of being read into memory."""
        from compress.data.split import Splits
        from compress.tasks import task_spec

        spec = task_spec(self.meta["task"])
        parts: dict[str, Any] = {}
        for split in SPLITS:
            attrs = self.meta["rows"][split]
            if self.held is not None and not attrs.get("streamed"):
                parts[split] = copy.copy(getattr(self.held[0], split))  # a stage may set attributes on its rows
                continue
            ds = getattr(self.held[0], split) if self.held is not None else _load_rows(self.folder / ROWS_DIR / split)
            parts[split] = ds if streamed and attrs.get("streamed") else spec.rows_from_columns(ds.to_dict(), attrs)
        source_rows = self.meta["splits"]["train"]["source_rows"]
        if streamed and self.meta["rows"]["train"].get("streamed"):
            from compress.data.rows import StreamedSplits

            return StreamedSplits(parts["train"], parts["eval"], parts["test"], source_rows=source_rows,
                                  eval_ids=self.eval_ids())
        return Splits(parts["train"], parts["eval"], parts["test"], source_rows, self.eval_ids())

    def unlabeled(self) -> list[Any]:
        """The data.unlabeled corpora as the split stored them (memory-mapped ``datasets.Dataset``, a "text" column
        each, cut to their limits): what distillation, prune recovery, QAT and the vocabulary count add to train."""
        if self.held is not None:
            return list(self.held[1])
        return [_load_rows(self.folder / ROWS_DIR / UNLABELED_DIR / str(i)) for i in range(len(self.meta["unlabeled"]))]

    def rows_attrs(self, split: str = "train") -> dict[str, Any]:
        """What a split's rows do not hold as columns: its source, class names, tag names, QA windowing."""
        return dict(self.meta["rows"][split])


def _load_rows(path: Path) -> Any:
    import datasets

    from compress.data.files import QuietDatasets

    with QuietDatasets():
        return datasets.load_from_disk(str(path))


def _attrs(rows: Any) -> dict[str, Any]:
    """What a split's rows do not hold as columns (a label-free train split, a memory-mapped corpus: nothing)."""
    return rows.attrs() if hasattr(rows, "attrs") else {"source": "", "streamed": True}


def _save_rows(folder: Path, splits: Any, extra: list[Any]) -> None:
    """Each split's rows as an Arrow dataset under ``folder/<split>`` and each data.unlabeled corpus under
    ``folder/unlabeled/<i>``, written in a fresh folder then put in place."""
    import tempfile

    import datasets

    from compress.data.files import QuietDatasets
    from compress.core.fsio import replace_dir, writing

    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    with writing(tmp), QuietDatasets():
        for split in SPLITS:
            rows = getattr(splits, split)
            if hasattr(rows, "to_columns"):
                ds = datasets.Dataset.from_dict(rows.to_columns())
            else:  # a label-free train split: the memory-mapped corpus, its text (and pair) columns
                ds = rows.select_columns([c for c in ("text", "pair") if c in rows.column_names])
            ds.save_to_disk(str(tmp / split))
        for i, corpus in enumerate(extra):
            corpus.save_to_disk(str(tmp / UNLABELED_DIR / str(i)))
    replace_dir(tmp, folder, "the run's data rows")


def config_digest(data_cfg: Any, task: str, seed: int) -> str:
    """What the split depends on besides the files: the data section, the task and the seed."""
    dumped = data_cfg.model_dump(mode="json")
    return hashlib.sha256(json.dumps([dumped, task, seed], sort_keys=True).encode()).hexdigest()[:16]


def read_plan(run_dir: Path | None) -> RunData | None:
    """The run's data artifact, or None where there is none (a stage called on its own)."""
    if run_dir is None:
        return None
    folder = Path(run_dir) / SPLITS_DIR
    try:
        meta = json.loads((folder / SPLITS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if "rows" not in meta or not (folder / ROWS_DIR).is_dir():
        return None  # an artifact of an older layout (no rows): the run splits again
    return RunData(folder, meta)


def _split(data_cfg: Any, task: str, seed: int, cache_dir: Path,
           labels: dict[str, Any] | None) -> tuple[dict[str, Any], Any, list[Any]]:
    """The split, read from the files (the task's loader): (what splits.json records, the splits, the corpora)."""
    from compress.data.files import reading_files
    from compress.data.rows import load_distill_splits, load_splits, unlabeled_corpora
    from compress.tasks import task_spec

    streamed = not task_spec(task).train_labels  # a label-free training corpus streams (distillation splits)
    with reading_files():
        splits = load_distill_splits(data_cfg, task, seed, cache_dir) if streamed else \
            load_splits(data_cfg, task, seed, **(labels or {}))
        extra = unlabeled_corpora(data_cfg, cache_dir)
    meta: dict[str, Any] = {"task": task, "seed": seed, "config": config_digest(data_cfg, task, seed),
                            "eval_from_train": not data_cfg.eval, "splits": {},
                            "rows": {split: _attrs(getattr(splits, split)) for split in SPLITS}}
    for split in SPLITS:
        data = getattr(splits, split)
        source = getattr(data_cfg, split) or (data_cfg.train if split == "eval" else data_cfg.eval or data_cfg.train)
        meta["splits"][split] = {"source": str(source), "rows": len(data),
                                 "sha256": split_digest(data, labels_in_digest(task, split))}
    meta["splits"]["train"]["source_rows"] = splits.source_rows
    meta["unlabeled"] = [{"source": src.source, "rows": len(corpus), "sha256": split_digest(corpus, False)}
                         for src, corpus in zip(data_cfg.unlabeled, extra)]
    return meta, splits, extra


def split_in_memory(data_cfg: Any, task: str, seed: int, run_dir: Path, cache_dir: Path,
                    labels: dict[str, Any] | None = None) -> RunData:
    """The split :func:`write_plan` makes, held in memory and written nowhere: what a rank other than the first
    of a multi-process launch uses (no process group exists yet to wait on the first rank's files)."""
    meta, splits, extra = _split(data_cfg, task, seed, cache_dir, labels)
    return RunData(Path(run_dir) / SPLITS_DIR, meta, (splits, extra))


def write_plan(data_cfg: Any, task: str, seed: int, run_dir: Path, cache_dir: Path,
               labels: dict[str, Any] | None = None) -> RunData:
    """Split the data once (the task's loader) and write the artifact, rows included; an unchanged one is kept.

    ``labels`` (:func:`compress.run.stages.head_labels`) checks every split's class ids against the model head the
    run will use, before any stage works on them."""
    import numpy as np

    from compress.core.fsio import refuse_symlink, remove_own, write_bytes, write_text
    from compress.data.files import active_sources

    folder = Path(run_dir) / SPLITS_DIR
    refuse_symlink(folder, "the run's data folder")
    if active_sources() in (None, folder / SOURCES_DIR):  # a run's own split: the copies its stages kept of other
        refuse_symlink(folder / SOURCES_DIR, "the run's stored data")  # sources last time may be stale
        remove_own(folder / SOURCES_DIR)
    meta, splits, extra = _split(data_cfg, task, seed, cache_dir, labels)
    folder.mkdir(parents=True, exist_ok=True)
    old = read_plan(run_dir)
    if old is not None and old.meta == meta and (not meta["eval_from_train"] or (folder / EVAL_IDS_FILE).is_file()):
        return old
    _save_rows(folder / ROWS_DIR, splits, extra)
    if meta["eval_from_train"]:
        buf = io.BytesIO()
        np.save(buf, np.asarray(splits.eval_ids, dtype=np.int64))
        write_bytes(folder / EVAL_IDS_FILE, buf.getvalue(), "the run's eval row ids")
    # written whole or not at all (an interrupted run leaves the old one), never through a symlink
    write_text(folder / SPLITS_FILE, json.dumps(meta, indent=2) + "\n", "the run's data artifact")
    return RunData(folder, meta)
