"""Token classification (NER) data: CoNLL-style files and JSONL, tag names to ids, word-to-subword alignment.

Not yet reachable from the pipeline (the config refuses ``task: token-classification``; issue 16). The
alignment is transformers' ``run_ner`` recipe: the first sub-token of each word carries the word's tag,
the other sub-tokens and the special tokens get -100 (ignored by the loss and the metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.errors import DataError

if TYPE_CHECKING:
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
    enc = tokenizer(sentences.tokens, is_split_into_words=True, truncation=True, max_length=max_length)
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
