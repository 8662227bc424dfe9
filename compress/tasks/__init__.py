"""The tasks: one ``TaskSpec`` per task, one file each (embedding, classification, regression, mlm, ner, qa).

``TASKS[name]`` answers every per-task question (head, metric, fidelity, Optimum task, pipeline tag, flags);
adding a task is one file here plus its tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

from compress.tasks import classification, embedding, mlm, ner, qa, regression
from compress.tasks.spec import TaskSpec

TASKS: dict[str, TaskSpec] = {m.SPEC.name: m.SPEC for m in (embedding, classification, regression, mlm, ner, qa)}


class TaskTable(Mapping[str, Any]):
    """One field of every registered task, by task name, read from ``TASKS`` at each lookup: a task registered
    after import (a plug-in, a test) is seen, where a dict built at import would miss it."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __getitem__(self, name: str) -> Any:
        return getattr(TASKS[name], self.field)

    def __iter__(self) -> Iterator[str]:
        return iter(list(TASKS))

    def __len__(self) -> int:
        return len(TASKS)


TOKEN_TASKS = tuple(n for n, s in TASKS.items() if s.token_level)  # outputs per token, trained on pre-tokenized rows


def task_spec(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name is a one-line error naming the closest task."""
    from compress.core.errors import ConfigError, closest_name

    if name not in TASKS:
        close = closest_name(name, TASKS)
        hint = f"did you mean '{close}'? " if close else ""
        raise ConfigError(f"unknown task '{name}': {hint}tasks: {', '.join(TASKS)}")
    return TASKS[name]


def training_features(task: str, tokenizer: "PreTrainedTokenizerBase", model_config: "PretrainedConfig",
                      data: Any, max_length: int) -> Any:
    """The rows a token-level task trains on, tokenized the way transformers' examples do, as a ``datasets.Dataset``.

    token-classification: words aligned with ``model_config``'s tag ids (run_ner); question-answering: question +
    context windows at the data's ``doc_stride`` with start/end positions (run_qa). ``None`` for sentence tasks,
    whose rows are tokenized lazily while training.
    """
    if task == "question-answering":
        from compress.tasks.qa import feature_dataset, train_features

        return feature_dataset(train_features(tokenizer, data.examples, max_length, data.doc_stride))
    if task == "token-classification":
        from compress.tasks.ner import tokenized_dataset

        return tokenized_dataset(tokenizer, data, {v: int(k) for k, v in model_config.id2label.items()}, max_length)
    return None
