"""Train/eval/test carving and sample caps, shared by every task's loader.

Eval is a given file or the rows of the train file the run's data artifact (:mod:`compress.data.artifact`) names, else
a seeded shuffle's first ``data.eval_fraction``; test is a given file or eval. The row types differ by task
(sentence rows, tagged sentences, QA examples): anything with ``len``, ``subset`` and ``head`` splits here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from compress.core.errors import DataError


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



def planned_eval_ids(plan: Any, n: int, fraction: float, seed: int, source: str):
    """Eval row ids from the run's data artifact (or the seeded split without one), and the train ids."""
    import numpy as np

    ids = plan.eval_ids() if plan is not None else None
    if ids is None:
        return eval_split_ids(n, fraction, seed)
    if plan.meta["splits"]["train"].get("source_rows", n) != n or (len(ids) and int(ids[-1]) >= n):
        raise DataError(f"training data '{source}' has {n} rows, not the {plan.meta['splits']['train'].get('source_rows')} "
                        f"this run split at its start ({plan.folder}); the file changed while the run was going: run "
                        "the same command again to re-split")
    keep = np.ones(n, dtype=bool)
    keep[ids] = False
    return ids, np.flatnonzero(keep)



def checked_splits(splits: Any, plan: Any, task: str) -> Any:
    """The splits, after checking each against the run's data artifact (when there is one)."""
    if plan is not None:
        for name in ("train", "eval", "test"):
            plan.check(name, getattr(splits, name), task)
    return splits



def carve_splits(data_cfg: Any, seed: int, plan: Any, train: Any, read: Any) -> Splits:
    """Uncapped train/eval/test: eval is ``read(data.eval)`` or the train rows the run's data artifact (else the
    seeded split) names; test is ``read(data.test)`` or eval. ``train`` is any split type with len/subset."""
    source_rows, eval_ids = len(train), None
    if data_cfg.eval:
        ev = read(data_cfg.eval)
    else:
        eval_ids, train_ids = planned_eval_ids(plan, len(train), data_cfg.eval_fraction, seed, data_cfg.train)
        ev, train = train.subset(eval_ids.tolist()), train.subset(train_ids.tolist())
    test = read(data_cfg.test) if data_cfg.test else ev
    return Splits(train, ev, test, source_rows, eval_ids)



def announce_cut(split: str, kept: int, total: int, setting: str) -> None:
    """One line on the console (and in the run log) when a split loses rows to a cap."""
    if kept < total:
        from compress.core.console import note

        note(f"{split} split cut to {kept} of {total} rows by {setting}")



def capped_splits(splits: Splits, data_cfg: Any, plan: Any, task: str) -> Splits:
    """Train cut to data.max_train_samples, eval to data.max_eval_samples; a data.test file is kept whole (the
    bench stage cuts it to bench.max_eval_samples), else test is the eval split as cut. Checked against the run's
    data artifact; without one (the artifact being made, or a stage run on its own) each cut is announced."""
    import dataclasses

    ev = splits.eval.head(data_cfg.max_eval_samples)
    capped = dataclasses.replace(splits, train=splits.train.head(data_cfg.max_train_samples), eval=ev,
                                 test=splits.test if data_cfg.test else ev)
    if plan is None:
        announce_cut("train", len(capped.train), len(splits.train), "data.max_train_samples")
        announce_cut("eval", len(ev), len(splits.eval), "data.max_eval_samples")
    return checked_splits(capped, plan, task)
