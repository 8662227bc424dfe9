"""Loading text (and labels) from files, hub datasets, or the built-in demo corpus.

Sources: ``path.tsv|.csv|.jsonl|.txt``, ``hub:NAME[/CONFIG][@SPLIT]`` (needs `datasets` and
network) and ``builtin:pydoc`` — English sentences split out of CPython's own
``pydoc_data.topics``. The built-in corpus is a demo corpus for the default run (unlabelled
text for distillation and fidelity checks), not an evaluation set.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.errors import DataError

BUILTIN_CORPORA = ("builtin:pydoc",)


@dataclass
class TextData:
    """Parallel lists: sentences, optional second sentences (pairs), optional labels."""

    texts: list[str]
    pairs: list[str] | None = None
    labels: list[Any] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> "TextData":
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        return TextData([self.texts[i] for i in idx], pick(self.pairs), pick(self.labels), self.source)

    def head(self, n: int | None) -> "TextData":
        return self if n is None or n >= len(self) else self.subset(list(range(n)))


def builtin_pydoc_sentences(min_words: int = 5, max_words: int = 40) -> list[str]:
    """Prose sentences from the Python docs bundled with every CPython (no download)."""
    from pydoc_data.topics import topics

    sentences: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            lines = [ln.strip() for ln in para.splitlines()]
            if not lines or any(ln.startswith((">>>", "...", "*", "|", "+")) for ln in lines) or para.startswith("   "):
                continue
            text = " ".join(lines)
            for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
                words = sent.split()
                if min_words <= len(words) <= max_words and sent[0].isupper() and sent not in seen:
                    if sum(ch.isalpha() or ch == " " for ch in sent) / len(sent) > 0.85:
                        seen.add(sent)
                        sentences.append(sent)
    return sentences


def _read_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            if suffix == ".tsv":
                reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            else:
                reader = csv.DictReader(fh)
            return list(reader)
    if suffix in (".jsonl", ".json"):
        rows = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{n}: not a JSON object per line ({exc.msg})") from None
        return rows
    if suffix == ".txt":
        return [{"text": ln.rstrip("\n")} for ln in path.open(encoding="utf-8") if ln.strip()]
    raise DataError(f"data file '{path}': unsupported extension '{suffix}'; use .tsv, .csv, .jsonl or .txt")


def _read_hub(spec: str) -> list[dict[str, Any]]:
    from compress.errors import require

    datasets = require("datasets", extra="hub")
    name = spec[len("hub:"):]
    split = "train"
    if "@" in name:
        name, split = name.rsplit("@", 1)
    parts = name.split("/")
    config = None
    if len(parts) == 2 and parts[0] in ("glue", "super_glue"):
        name, config = parts
    elif len(parts) == 3:
        name, config = "/".join(parts[:2]), parts[2]
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # the hub raises many types: connection, not found, bad config
        raise DataError(f"could not load hub dataset '{spec}': {type(exc).__name__}: {str(exc)[:200]}") from None
    return [dict(r) for r in ds]


def read_rows(source: str) -> list[dict[str, Any]]:
    """Rows as dicts from a file path or hub spec (builtin corpora have one 'text' column)."""
    if source in BUILTIN_CORPORA:
        return [{"text": s} for s in builtin_pydoc_sentences()]
    if source.startswith("hub:"):
        return _read_hub(source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"data file '{source}' does not exist")
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"data file '{source}' is empty (no rows after the header)")
    return rows


def _column(rows: list[dict[str, Any]], name: str, source: str, role: str) -> list[Any]:
    if name not in rows[0]:
        raise DataError(
            f"data '{source}': {role} column '{name}' not found; columns are: {', '.join(map(str, rows[0].keys()))} "
            f"(set data.{role}_column)"
        )
    return [r[name] for r in rows]


def _parse_labels(raw: list[Any], task: str, source: str) -> list[Any]:
    out: list[Any] = []
    for i, v in enumerate(raw):
        try:
            out.append(int(v) if task == "classification" else float(v))
        except (TypeError, ValueError):
            kind = "an integer class id" if task == "classification" else "a number"
            raise DataError(f"data '{source}' row {i + 1}: label {v!r} is not {kind}") from None
    return out


def load_text_data(source: str, text_column: str, text_pair_column: str | None = None,
                   label_column: str | None = None, task: str = "embedding", limit: int | None = None) -> TextData:
    """Read a source into TextData, checking the named columns exist and labels parse."""
    rows = read_rows(source)
    if source in BUILTIN_CORPORA:
        text_column, text_pair_column, label_column = "text", None, None
    texts = [str(t) for t in _column(rows, text_column, source, "text")]
    pairs = [str(t) for t in _column(rows, text_pair_column, source, "text_pair")] if text_pair_column else None
    labels = None
    if label_column and task != "mlm":  # embedding: STS-style similarity scores
        labels = _parse_labels(_column(rows, label_column, source, "label"), task, source)
    data = TextData(texts, pairs, labels, source)
    return data.head(limit)


@dataclass
class Splits:
    train: TextData
    eval: TextData
    test: TextData


def load_splits(data_cfg: Any, task: str, seed: int) -> Splits:
    """Train/eval/test per the data config; eval is split off train when not given."""
    kw = dict(text_column=data_cfg.text_column, text_pair_column=data_cfg.text_pair_column,
              label_column=data_cfg.label_column, task=task)
    if task in ("classification", "regression") and not data_cfg.label_column:
        raise DataError(f"task '{task}' needs labels: set data.label_column")
    train = load_text_data(data_cfg.train, **kw)
    if data_cfg.eval:
        ev = load_text_data(data_cfg.eval, **kw)
    else:
        idx = list(range(len(train)))
        random.Random(seed).shuffle(idx)
        n_eval = max(1, int(len(idx) * data_cfg.eval_fraction))
        ev, train = train.subset(sorted(idx[:n_eval])), train.subset(sorted(idx[n_eval:]))
    test = load_text_data(data_cfg.test, **kw) if data_cfg.test else ev
    if len(train) == 0:
        raise DataError(f"training data '{data_cfg.train}' has no rows left after the eval split")
    return Splits(train.head(data_cfg.max_train_samples), ev.head(data_cfg.max_eval_samples),
                  test.head(data_cfg.max_eval_samples))


def distillation_texts(data_cfg: Any, train: TextData) -> list[str]:
    """Every distinct sentence for unlabelled distillation: train texts, pairs, and data.unlabeled sources."""
    texts = list(train.texts) + list(train.pairs or [])
    for src in data_cfg.unlabeled:
        texts += load_text_data(src.source, src.text_column, limit=src.limit).texts
    return list(dict.fromkeys(t for t in texts if t.strip()))


UNLABELED = -100  # label of a row with no gold label: the hard-label loss skips it (CrossEntropy's ignore_index)


def with_unlabeled(data_cfg: Any, train: TextData) -> TextData:
    """Labelled train rows plus data.unlabeled sentences (label UNLABELED) for classification distillation.

    The teacher's soft labels and hidden states supervise every row; only labelled rows add the hard
    loss. Sentences already in the labelled rows are not repeated.
    """
    if not data_cfg.unlabeled:
        return train
    if train.pairs is not None:
        raise DataError("data.unlabeled adds single sentences, but this task's training rows are sentence pairs "
                        f"(data.text_pair_column={data_cfg.text_pair_column!r}); remove data.unlabeled")
    seen = set(train.texts)
    extra = [t for t in distillation_texts(data_cfg, TextData([])) if t not in seen]
    return TextData(list(train.texts) + extra, None, list(train.labels or []) + [UNLABELED] * len(extra),
                    source=train.source)


def distillation_train(data_cfg: Any, task: str, train: TextData) -> TextData:
    """What distillation (and QAT) trains on: every sentence plus data.unlabeled for embedding/mlm,
    labelled rows plus unlabelled ones for classification, the labelled rows otherwise."""
    if task in ("embedding", "mlm"):
        return TextData(distillation_texts(data_cfg, train), source=train.source)
    if task == "classification":
        return with_unlabeled(data_cfg, train)
    return train

