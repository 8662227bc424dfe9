"""The one scorer: the task metric on gold rows and the fidelity to a reference model, by task.

The quantize guard, the search (through the guard's and the bench's retention), distillation's and pruning's
evaluation and the bench report all call these two functions, so a task has one metric and one fidelity name
everywhere. Outputs are a dict: ``"a"`` holds one entry per row (sentence vector, logits row, score), per word
(class id, -1 when truncated), per unpadded token (mlm: predicted token id) or per question (answer text);
``"b"`` the second sentences of embedding pairs, each encoded alone.
"""

from __future__ import annotations

from typing import Any

from compress.tasks import TASKS, task_spec
from compress.tasks.spec import Gold, Score


def metric(task: str, outputs: dict[str, Any], gold: Gold) -> Score | None:
    """The task metric of ``outputs`` against the rows' gold labels; None when the rows hold no gold for it."""
    return task_spec(task).score(outputs, gold)


def fidelity(task: str, outputs: dict[str, Any], reference: dict[str, Any]) -> tuple[str, float]:
    """(name, value): the agreement of ``outputs`` with a reference model's outputs on the same rows."""
    spec = task_spec(task)
    return spec.fidelity, float(spec.agreement(outputs, reference))


def fidelity_scores(task: str, outputs: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """The fidelity under its name, with the task's other agreement numbers (reports' ``extra``)."""
    name, value = fidelity(task, outputs, reference)
    extra = task_spec(task).agreement_extra
    return {name: value, **(extra(outputs, reference) if extra is not None else {})}


def is_fidelity(name: str | None) -> bool:
    """Whether a metric name is a fidelity (a reference model scores 1.0 on it by definition)."""
    return name in {spec.fidelity for spec in TASKS.values()}  # the registry as it is now


def metric_name(task: str, gold: Gold, has_reference: bool) -> str:
    """The name :func:`metric` (or, without gold, :func:`fidelity`) reports for ``task`` on these rows; 'none'
    when the rows have no gold and there is no reference model."""
    spec = task_spec(task)
    if spec.metric is not None and spec.has_gold(gold):
        return spec.metric
    return spec.fidelity if has_reference else "none"
