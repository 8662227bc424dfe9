"""Fine-tuning scores its dev split with the task's own metric (compress.tasks scoring), the name it keeps the best
checkpoint by (``spec.metric``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from compress.finetune.stage import _metric_fn
from compress.tasks import TASKS


def test_classification_dev_metric_is_accuracy_with_f1():
    pred = SimpleNamespace(predictions=np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]),
                           label_ids=np.array([1, 0, 0, 0]))
    got = _metric_fn("classification")(pred)
    assert got[TASKS["classification"].metric] == pytest.approx(0.75) and got["f1"] == pytest.approx(2 / 3)


def test_regression_dev_metric_is_spearman_of_the_single_logit():
    pred = SimpleNamespace(predictions=np.array([[0.1], [0.5], [0.3]]), label_ids=np.array([1.0, 3.0, 2.0]))
    got = _metric_fn("regression")(pred)
    assert got[TASKS["regression"].metric] == pytest.approx(1.0) and "pearson" in got


def test_finetune_refuses_tasks_without_training_labels(tmp_path):
    from compress.config import load_config
    from compress.core.errors import EdgepressError
    from compress.finetune.stage import run_stage

    cfg = load_config(None, ["task=mlm", "teacher.model=x", "data.train=builtin:pydoc"])
    with pytest.raises(EdgepressError, match=r"finetune trains on labels: it needs task classification, regression, "
                                             r"token-classification, question-answering, not 'mlm'"):
        run_stage(cfg, None, tmp_path)
