"""Calibration data: tokenised rows from the config's data, one row per batch (what NNCF/ORT expect)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Iterator

from benchmarks.feeds import tokenize_feeds
from compress.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedTokenizerBase

    from compress.data.rows import TextData


def calibration_texts(data: "TextData", task: str, limit: int) -> tuple[list[str], list[str] | None]:
    """Texts (and pairs) to calibrate on: embedding models see each sentence of a pair on its own."""
    if len(data) == 0:
        raise DataError(f"calibration data '{data.source}' has no rows; static/NNCF quantization needs some")
    from compress.tasks import task_spec

    if data.pairs is not None and task_spec(task).pooled:
        texts = [t for pair in zip(data.texts, data.pairs) for t in pair]
        return texts[:limit], None
    pairs = data.pairs[:limit] if data.pairs is not None else None
    return data.texts[:limit], pairs


class TextCalibrationFeeds:
    """Tokenised calibration rows (batch 1, no padding) with a record of what was read and yielded."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", texts: list[str], pairs: list[str] | None,
                 input_names: list[str], max_length: int, source: str = "") -> None:
        self.texts = texts
        self.pairs = pairs
        self.source = source
        self._args = (tokenizer, input_names, max_length)
        self.feeds: list[dict[str, np.ndarray]] = [
            tokenize_feeds(tokenizer, [t], None if pairs is None else [pairs[i]], max_length, input_names)
            for i, t in enumerate(texts)
        ]
        self._count = [0]

    @property
    def yielded(self) -> int:
        """Rows handed to a quantizer so far (padded copies count here too)."""
        return self._count[0]

    def packed(self) -> "TextCalibrationFeeds":
        """The same tokens packed into equal-length rows without padding, for histogram calibrators.

        ORT's Entropy/Percentile collectors stack every batch into one array (so shapes must match), and
        padding would put the attention mask's float-min bias into the histograms (range overflow).
        Rows are [CLS] tokens... [SEP] chunks of the median row length, all tokens attended.
        """
        import numpy as np

        tok, names, max_length = self._args
        ids = [f["input_ids"][0] for f in self.feeds]
        length = int(min(max_length, max(8, np.median([len(x) for x in ids]))))
        body = [t for x in ids for t in x[1:-1]]  # drop each row's own special tokens
        cls = tok.cls_token_id if tok.cls_token_id is not None else int(ids[0][0])
        sep = tok.sep_token_id if tok.sep_token_id is not None else int(ids[0][-1])
        step = length - 2
        copy = TextCalibrationFeeds.__new__(TextCalibrationFeeds)
        copy.texts, copy.pairs, copy.source, copy._args, copy._count = self.texts, self.pairs, self.source, self._args, self._count
        copy.feeds = []
        for s in range(0, max(1, len(body) - step + 1), step):
            row = np.asarray([[cls, *body[s:s + step], sep]], dtype=np.int64)
            feed = {"input_ids": row}
            if "attention_mask" in names:
                feed["attention_mask"] = np.ones_like(row)
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(row)
            copy.feeds.append(feed)
        return copy

    def __len__(self) -> int:
        return len(self.feeds)

    def __iter__(self) -> Iterator[dict[str, "np.ndarray"]]:
        for feed in self.feeds:
            self._count[0] += 1
            yield feed

    def summary(self) -> dict[str, Any]:
        """Rows, tokens and a fingerprint of the exact texts, for stage.json."""
        digest = hashlib.sha256("\n".join(self.texts + (self.pairs or [])).encode()).hexdigest()[:16]
        tokens = int(sum(int(f["attention_mask"].sum()) if "attention_mask" in f else f["input_ids"].size
                         for f in self.feeds))
        return {"source": self.source, "rows": len(self.feeds), "tokens": tokens, "fingerprint": digest,
                "rows_yielded": self.yielded}


def ort_reader(feeds: TextCalibrationFeeds) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over ``feeds`` (restartable, counts what it hands out)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(feeds)

        def __len__(self) -> int:
            return len(feeds)

    return _Reader()


def texts_fingerprint(texts: list[str], pairs: list[str] | None = None) -> str:
    """The fingerprint ``TextCalibrationFeeds.summary`` reports for these texts."""
    return hashlib.sha256("\n".join(texts + (pairs or [])).encode()).hexdigest()[:16]
