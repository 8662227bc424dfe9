"""Train/eval/test carving and sample caps, shared by every task's loader.

Eval is a given file or a seeded shuffle's first ``data.eval_fraction`` of the train rows; test is a given file or
eval. The run splits once (:mod:`compress.data.artifact` stores the rows); stages never split again. The row types differ by task
(sentence rows, tagged sentences, QA examples): anything with ``len``, ``subset`` and ``head`` splits here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol



class Rows(Protocol):
    """What a split holds: rows that can be counted, picked by index and cut to a first ``n``."""

    label_names: list[str] | None

    def __len__(self) -> int: ...

    def subset(self, idx: list[int]) -> "Rows": ...

    def head(self, n: int | None) -> "Rows": ...


@dataclass
class Splits:
    train: Rows
    eval: Rows
    test: Rows
    source_rows: int = 0  # rows of the train file before the eval split was taken out
    eval_ids: Any = None  # the train file's rows that became the eval split (None: eval is its own file)

    @property
    def label_names(self) -> list[str] | None:
        """Class names by id (same on every split), or None for integer labels."""
        return self.train.label_names



def eval_split_ids(n: int, fraction: float, seed: int):
    """(eval row ids, train row ids), each sorted: the first ``fraction`` of the seeded shuffle of ``n`` rows is eval."""
    import numpy as np

    perm = _shuffled_indices(n, seed)
    n_eval = max(1, int(len(perm) * fraction))
    return np.sort(perm[:n_eval]), np.sort(perm[n_eval:])



def _shuffled_indices(n: int, seed: int):
    """The permutation ``random.Random(seed).shuffle(list(range(n)))`` makes (load_splits' eval split),
    held in an int64 array (8 bytes a row) instead of a list of Python ints."""
    import array

    import numpy as np

    idx = array.array("q", range(n))
    random.Random(seed).shuffle(idx)
    return np.frombuffer(idx, dtype=np.int64)



def carve_splits(data_cfg: Any, seed: int, train: Any, read: Any) -> Splits:
    """Uncapped train/eval/test: eval is ``read(data.eval)`` or the seeded split's share of the train rows; test is
    ``read(data.test)`` or eval. ``train`` is any split type with len/subset."""
    source_rows, eval_ids = len(train), None
    if data_cfg.eval:
        ev = read(data_cfg.eval)
    else:
        eval_ids, train_ids = eval_split_ids(len(train), data_cfg.eval_fraction, seed)
        ev, train = train.subset(eval_ids.tolist()), train.subset(train_ids.tolist())
    test = read(data_cfg.test) if data_cfg.test else ev
    return Splits(train, ev, test, source_rows, eval_ids)



def announce_cut(split: str, kept: int, total: int, setting: str) -> None:
    """One line on the console (and in the run log) when a split loses rows to a cap."""
    if kept < total:
        from compress.core.console import note

        note(f"{split} split cut to {kept} of {total} rows by {setting}")



def capped_splits(splits: Splits, data_cfg: Any) -> Splits:
    """Train cut to data.max_train_samples, eval to data.max_eval_samples; a data.test file is kept whole (the
    bench stage cuts it to bench.max_eval_samples), else test is the eval split as cut. Each cut is announced (the
    run's split is made once, so once a run)."""
    import dataclasses

    ev = splits.eval.head(data_cfg.max_eval_samples)
    capped = dataclasses.replace(splits, train=splits.train.head(data_cfg.max_train_samples), eval=ev,
                                 test=splits.test if data_cfg.test else ev)
    announce_cut("train", len(capped.train), len(splits.train), "data.max_train_samples")
    announce_cut("eval", len(ev), len(splits.eval), "data.max_eval_samples")
    return capped
