"""Token classification (NER) data: CoNLL-style files and JSONL, tag names to ids, word-to-subword alignment.

The pipeline's ``task: token-classification`` reads its splits here (:func:`load_ner_splits`). The alignment is
transformers' ``run_ner`` recipe: the first sub-token of each word carries the word's tag, the other
sub-tokens and the special tokens get -100 (ignored by the loss and the metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.core.errors import DataError

if TYPE_CHECKING:
    from compress.tasks.spec import Gold, Score, TaskSpec
    from transformers import PreTrainedTokenizerBase

IGNORE = -100
DOCSTART = "-DOCSTART-"


@dataclass
class TaggedSentences:
    """Sentences as word lists with one tag per word, and where they came from."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str = ""

    def __len__(self) -> int:
        return len(self.tokens)

    label_names = None  # tags are names already (the TextData field of the same name)
    pairs = None

    @property
    def texts(self) -> list[str]:
        """Each sentence's words joined by single spaces (CoNLL words hold no whitespace: split(" ") restores them)."""
        return [" ".join(words) for words in self.tokens]

    @property
    def labels(self) -> list[list[str]]:
        return self.tags

    def subset(self, idx: list[int]) -> "TaggedSentences":
        out = TaggedSentences([self.tokens[i] for i in idx], [self.tags[i] for i in idx], self.source)
        out.label_names = self.label_names  # the model's tag order, when a caller set it
        return out

    def head(self, n: int | None) -> "TaggedSentences":
        return self if n is None or n >= len(self) else self.subset(list(range(n)))

    def to_columns(self) -> dict[str, list[Any]]:
        """Words and tags per sentence as columns, for the run's data artifact."""
        return {"tokens": self.tokens, "tags": self.tags}

    def attrs(self) -> dict[str, Any]:
        """What the columns do not hold: the source and its tag names."""
        return {"source": self.source, "tag_names": label_names(self)}

    @classmethod
    def from_columns(cls, cols: dict[str, list[Any]], attrs: dict[str, Any]) -> "TaggedSentences":
        """Sentences back from :meth:`to_columns`."""
        return cls(cols["tokens"], cols["tags"], attrs.get("source", ""))


def read_conll(path: str | Path, tag_column: int = -1) -> TaggedSentences:
    """``token [extra columns...] TAG`` per line, a blank line between sentences; ``-DOCSTART-`` lines skipped.

    ``tag_column`` picks the tag among the whitespace-separated columns (the last one by default, as in
    CoNLL-2003's ``token POS chunk NER``). A line with a single column is an error naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CoNLL file '{path}' does not exist")
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    labels: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"CoNLL file '{path}' is not UTF-8 (byte {exc.start}); convert it to UTF-8") from None
    for n, line in enumerate(lines, 1):
        cols = line.split()
        if not cols:
            if words:
                tokens.append(words)
                tags.append(labels)
                words, labels = [], []
            continue
        if cols[0] == DOCSTART:
            continue
        if len(cols) < 2:
            raise DataError(f"{path}:{n}: expected 'token TAG' (whitespace-separated), got one column {line.strip()!r}")
        words.append(cols[0])
        labels.append(cols[tag_column])
    if words:
        tokens.append(words)
        tags.append(labels)
    if not tokens:
        raise DataError(f"CoNLL file '{path}' holds no sentence (no 'token TAG' lines)")
    return TaggedSentences(tokens, tags, str(path))


def read_jsonl(path: str | Path, tokens_field: str = "tokens", tags_field: str = "tags") -> TaggedSentences:
    """JSON lines with a ``tokens`` list and a ``tags`` list of the same length (read by ``datasets``)."""
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(path), split="train")
    missing = [f for f in (tokens_field, tags_field) if f not in ds.column_names]
    if missing:
        raise DataError(f"'{path}': field '{missing[0]}' not found; fields are {ds.column_names}")
    tokens, tags = ds[tokens_field], ds[tags_field]
    for i, (w, t) in enumerate(zip(tokens, tags), 1):
        if len(w) != len(t):
            raise DataError(f"'{path}' row {i}: {len(w)} tokens but {len(t)} tags")
    return TaggedSentences([list(map(str, w)) for w in tokens], [list(map(str, t)) for t in tags], str(path))


def tag_scheme(tag_names: set[str]) -> str:
    """IOB2/IOB1 (B-/I- prefixes) or BIOES (S-/E- as well); O alone counts as any."""
    prefixes = {t.split("-", 1)[0] for t in tag_names if t != "O"}
    if prefixes - {"B", "I", "E", "S", "O"}:
        raise DataError(f"tags {sorted(tag_names)[:8]} are not BIO/BIOES tags (expected B-X, I-X, E-X, S-X or O)")
    return "BIOES" if prefixes & {"E", "S"} else "IOB2"


def label_names(sentences: TaggedSentences) -> list[str]:
    """``O`` first, then the other tags sorted: index = class id (saved as ``id2label``)."""
    names = {t for tags in sentences.tags for t in tags}
    tag_scheme(names)
    return (["O"] if "O" in names else []) + sorted(names - {"O"})


def align_labels(tokenizer: "PreTrainedTokenizerBase", sentences: TaggedSentences, label2id: dict[str, int],
                 max_length: int) -> dict[str, list[list[int]]]:
    """Tokenize pre-split words and give each word's first sub-token its tag id, -100 elsewhere (run_ner)."""
    unknown = sorted({t for tags in sentences.tags for t in tags} - set(label2id))
    if unknown:
        raise DataError(f"'{sentences.source}': tags {unknown[:5]} are not among the model's labels "
                        f"({', '.join(label2id)})")
    from compress.model.loading import words_tokenizer

    enc = words_tokenizer(tokenizer)(sentences.tokens, is_split_into_words=True, truncation=True,
                                     max_length=max_length)
    all_labels = []
    for i, tags in enumerate(sentences.tags):
        previous = None
        row = []
        for word in enc.word_ids(i):
            row.append(IGNORE if word is None or word == previous else label2id[tags[word]])
            previous = word
        all_labels.append(row)
    out: dict[str, Any] = {k: enc[k] for k in enc.keys()}
    out["labels"] = all_labels
    return out


def _read_hub_tagged(spec: str, tokens_field: str, tags_field: str) -> TaggedSentences:
    """``hub:conll2003[@split]`` / ``hub:wikiann/en``: tokens and ClassLabel tag ids turned into tag names."""
    from compress.data.files import read_hub

    cols = read_hub(spec)
    tokens_field = tokens_field if tokens_field in cols.data else "tokens"
    tags_field = tags_field if tags_field in cols.data else "ner_tags"
    for field in (tokens_field, tags_field):
        if field not in cols.data:
            raise DataError(f"hub dataset '{spec}': field '{field}' not found; fields are {cols.names}")
    names = cols.class_names.get(tags_field)
    if names is None:
        raise DataError(f"hub dataset '{spec}': '{tags_field}' holds no tag names (ClassLabel); use a CoNLL/JSONL file")
    tags = [[names[int(t)] for t in row] for row in cols.data[tags_field]]
    return TaggedSentences([list(map(str, w)) for w in cols.data[tokens_field]], tags, spec)


def read_tagged(source: str, tokens_field: str = "tokens", tags_field: str = "tags") -> TaggedSentences:
    """A NER source: ``.json``/``.jsonl`` (token and tag lists), ``hub:NAME``, anything else CoNLL-style text;
    inside a running pipeline, read once (:func:`compress.data.files.read_once`)."""
    from compress.data.files import Columns, read_once

    def read() -> Columns:
        got = _read_tagged(source, tokens_field, tags_field)
        return Columns({"tokens": got.tokens, "tags": got.tags, "source": [got.source] * len(got)}, {})

    cols = read_once(source, f"tagged:{tokens_field}:{tags_field}", read).data
    return TaggedSentences(cols["tokens"], cols["tags"], cols["source"][0] if cols["source"] else source)


def _read_tagged(source: str, tokens_field: str, tags_field: str) -> TaggedSentences:
    if source.startswith("hub:"):
        return _read_hub_tagged(source, tokens_field, tags_field)
    if Path(source).suffix.lower() in (".json", ".jsonl"):
        if not Path(source).is_file():
            raise DataError(f"data file '{source}' does not exist")
        return read_jsonl(source, tokens_field, tags_field)
    return read_conll(source)


def load_ner_splits(data_cfg: Any, seed: int, task: str = "token-classification",
                    **_class_checks: Any) -> Any:
    """Train/eval/test sentences per the data config, as :func:`compress.data.rows.load_splits` does for text rows
    (its class-id checks are for sentence labels: tags are checked against the training file's here).

    JSONL fields: ``data.text_column`` (default ``tokens``) and ``data.label_column`` (default ``tags``). The eval
    split is carved out of train when ``data.eval`` is not given (the run's data artifact holds its row ids).
    """
    from compress.data.split import capped_splits, carve_splits

    fields = (data_cfg.text_column if data_cfg.text_column != "sentence" else "tokens", data_cfg.label_column or "tags")
    train = read_tagged(data_cfg.train, *fields)
    names = label_names(train)
    splits = carve_splits(data_cfg, seed, train, lambda source: read_tagged(source, *fields))
    for split in (splits.eval, splits.test):
        unknown = sorted({t for tags in split.tags for t in tags} - set(names))
        if unknown:
            raise DataError(f"'{split.source}': tags {unknown[:5]} do not occur in the training data "
                            f"'{data_cfg.train}' ({', '.join(names)})")
    if len(splits.train) == 0:
        raise DataError(f"training data '{data_cfg.train}' has no sentences left after the eval split")
    if len(names) < 2:
        raise DataError(f"training data '{data_cfg.train}' has a single tag ({names[0]!r}): NER needs entity tags")
    return capped_splits(splits, data_cfg)


def read_eval(source: str, task: str, *_columns: str | None) -> TaggedSentences:
    """One eval file's tagged sentences (bench --data: CoNLL, or JSONL with the fields tokens and tags)."""
    return read_tagged(source)


def tokenized_dataset(tokenizer: "PreTrainedTokenizerBase", sentences: TaggedSentences, label2id: dict[str, int],
                      max_length: int) -> Any:
    """The sentences tokenized with aligned labels as a ``datasets.Dataset`` (input ids, mask, labels per token)."""
    import datasets

    return datasets.Dataset.from_dict(align_labels(tokenizer, sentences, label2id, max_length))


def first_token_tags(logits: Any, labels: Any, id2label: dict[int, str]) -> tuple[list[list[str]], list[list[str]]]:
    """(gold, predicted) tag lists per row from token logits and aligned labels: the positions that carry a label
    (each word's first sub-token) are read, as transformers' run_ner evaluates."""
    import numpy as np

    pred = np.asarray(logits).argmax(-1)
    gold_rows, pred_rows = [], []
    for p_row, l_row in zip(pred, np.asarray(labels)):
        keep = l_row != IGNORE
        gold_rows.append([id2label[int(t)] for t in l_row[keep]])
        pred_rows.append([id2label[int(t)] for t in p_row[keep]])
    return gold_rows, pred_rows


def entity_quality(model: Any, tokenizer: "PreTrainedTokenizerBase", sentences: TaggedSentences, max_length: int,
                   batch_size: int = 64) -> dict[str, float]:
    """Entity precision/recall/F1 (seqeval) of a PyTorch token-classification model on ``sentences``: each word's
    tag is read at its first sub-token, as in training (words cut by truncation are not scored here)."""
    import torch

    from benchmarks.metrics import entity_scores
    from compress.model.loading import model_input_names

    id2label = {int(k): v for k, v in model.config.id2label.items()}
    label2id = {v: k for k, v in id2label.items()}
    enc = align_labels(tokenizer, sentences, label2id, max_length)
    accepted = model_input_names(model)
    device = next(model.parameters()).device
    gold: list[list[str]] = []
    pred: list[list[str]] = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(sentences), batch_size):
            rows = [{k: enc[k][j] for k in enc if k != "labels"} for j in range(i, min(i + batch_size, len(sentences)))]
            batch = tokenizer.pad(rows, return_tensors="pt")
            logits = model(**{k: v.to(device) for k, v in batch.items() if k in accepted}).logits.float().cpu().numpy()
            width = logits.shape[1]
            labels = [enc["labels"][j] + [IGNORE] * (width - len(enc["labels"][j])) for j in range(i, i + len(rows))]
            g, p = first_token_tags(logits, labels, id2label)
            gold += g
            pred += p
    return entity_scores(gold, pred)


def score(out: dict, gold: "Gold") -> "Score | None":
    """Entity precision/recall/F1 (seqeval) of each word's predicted tag against the gold tags; None without tags."""
    from benchmarks.metrics import entity_scores
    from benchmarks.tags import row_tags
    from compress.tasks.spec import Score

    if gold.tags is None:
        return None
    extra = entity_scores(gold.tags, row_tags(out["a"], gold.word_counts or [], gold.label_names))
    return Score("f1", extra["f1"], extra)


def agreement(out: dict, ref: dict) -> float:
    """Share of words whose predicted class equals the reference model's (truncated words skipped)."""
    from benchmarks.metrics import word_agreement

    return word_agreement([out["a"]], [ref["a"]])


def model_score(model: Any, tokenizer: "PreTrainedTokenizerBase", data: TaggedSentences, max_length: int,
                interface: Any = None) -> "Score":
    """Entity F1 (with precision and recall) of a PyTorch model on tagged sentences (:func:`entity_quality`)."""
    from compress.tasks.spec import Score

    extra = entity_quality(model, tokenizer, data, max_length)
    return Score("f1", extra["f1"], extra)


def _spec() -> "TaskSpec":
    from compress.tasks.spec import HeadSpec, OutputSpec, TaskSpec

    return TaskSpec(
        name="token-classification",
        head=HeadSpec("token-classification", "AutoModelForTokenClassification", (
            OutputSpec("logits", ("batch", "sequence", "num_labels"),
                       "per-token class scores; argmax indexes labels.json"),
        ), weights=("classifier",)),
        metric="f1", fidelity="word_agreement", score=score, agreement=agreement,
        optimum_task="token-classification", pipeline_tag="token-classification", token_level=True,
        has_gold=lambda gold: gold.tags is not None, outputs="words", gold="tags", model_score=model_score,
        class_names=True, rows="compress.tasks.ner:TaggedSentences", loader="compress.tasks.ner:load_ner_splits", reader="compress.tasks.ner:read_eval",
    )


SPEC = _spec()
