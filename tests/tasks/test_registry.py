"""The task registry: one spec per task of the config, owning the head, metric, fidelity and task facts."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from compress.tasks import TASKS, TOKEN_TASKS, task_spec
from compress.tasks.spec import Gold


def test_registry_covers_the_config_tasks_in_order():
    from compress.config import Task

    assert tuple(TASKS) == typing.get_args(Task)
    assert all(spec.name == name and spec.head.task == name for name, spec in TASKS.items())


def test_export_heads_and_tables_are_read_from_the_specs():
    from benchmarks.baseline import OPTIMUM_TASK, STATIC_TASKS
    from compress.package.card import PIPELINE_TAG
    from export.heads import HEADS, get_head

    assert HEADS["question-answering"].output_names == ["start_logits", "end_logits"]
    assert get_head("fill-mask") is TASKS["mlm"].head
    assert OPTIMUM_TASK["regression"] == "text-classification" and PIPELINE_TAG["embedding"] == "sentence-similarity"
    assert STATIC_TASKS == ("embedding", "classification", "regression", "mlm")
    assert TOKEN_TASKS == ("token-classification", "question-answering")


def test_unknown_task_is_one_line_naming_the_closest():
    from compress.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown task 'clasification': did you mean 'classification'\?"):
        task_spec("clasification")


def test_one_fidelity_name_per_task():
    assert {n: s.fidelity for n, s in TASKS.items()} == {
        "embedding": "fidelity_cosine", "classification": "top1_agreement", "regression": "fidelity_spearman",
        "mlm": "top1_agreement", "token-classification": "word_agreement", "question-answering": "answer_agreement"}


def test_labels_count_in_the_train_digest_only_where_training_reads_them():
    from compress.data.artifact import labels_in_digest

    assert not labels_in_digest("embedding", "train") and not labels_in_digest("mlm", "train")
    assert labels_in_digest("regression", "train") and labels_in_digest("embedding", "eval")


def test_classification_score_and_agreement():
    spec = TASKS["classification"]
    out = {"a": np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])}
    ref = {"a": np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])}
    got = spec.score(out, Gold(labels=[1, 0, 0]))
    assert got.metric == "accuracy" and got.value == pytest.approx(2 / 3) and "f1" in got.extra
    assert spec.agreement(out, ref) == pytest.approx(2 / 3)
    assert spec.score(out, Gold()) is None


def test_embedding_scores_sts_pairs_and_cosine_over_both_sides():
    spec = TASKS["embedding"]
    a, b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([[1.0, 0.1], [1.0, 0.0], [1.0, 0.9]])
    got = spec.score({"a": a, "b": b}, Gold(labels=[4.0, 0.0, 5.0], pairs=True))
    assert got.metric == "spearman" and got.value == pytest.approx(1.0)
    assert spec.score({"a": a}, Gold()) is None
    assert spec.agreement({"a": a, "b": b}, {"a": a, "b": -b}) == pytest.approx(0.0)


def test_regression_and_mlm_agreement():
    assert TASKS["regression"].agreement({"a": np.array([[1.0], [2.0], [3.0]])},
                                         {"a": np.array([[0.1], [0.5], [0.2]])}) == pytest.approx(0.5)
    assert TASKS["mlm"].agreement({"a": np.array([3, 4, 5, 6])}, {"a": np.array([3, 4, 0, 6])}) == pytest.approx(0.75)
    assert TASKS["mlm"].metric is None


def test_token_classification_scores_entities_with_seqeval():
    spec = TASKS["token-classification"]
    gold = Gold(labels=[["B-PER", "O"], ["O"]], tags=[["B-PER", "O"], ["O"]], word_counts=[2, 1],
                label_names=["O", "B-PER"])
    got = spec.score({"a": np.array([1, 0, 1])}, gold)
    assert got.metric == "f1" and got.extra["precision"] == pytest.approx(0.5) and got.extra["recall"] == 1.0
    assert spec.agreement({"a": np.array([1, 0, -1])}, {"a": np.array([1, 1, 1])}) == pytest.approx(0.5)


def test_the_model_loader_takes_each_heads_class_and_weights_from_the_spec():
    from compress.model.loading import head_weights_missing

    assert head_weights_missing(["bert.pooler.dense.weight", "classifier.bias"], "classification") == ["classifier.bias"]
    assert head_weights_missing(["cls.predictions.bias"], "mlm") == ["cls.predictions.bias"]
    assert head_weights_missing(["qa_outputs.weight", "classifier.bias"], "question-answering") == ["qa_outputs.weight"]
    assert head_weights_missing(["classifier.bias"], "embedding") == []


@pytest.mark.parametrize("task", ["embedding", "classification"])
def test_read_interface_takes_pooling_and_labels_from_the_spec_and_names_the_model(tiny_model_dir, task):
    from compress.model.interface import read_interface

    path = tiny_model_dir("bert", task)
    iface = read_interface(str(path), task)
    assert iface.source == str(path)  # the model, never the task spec
    assert (iface.pooling is not None) == TASKS[task].pooled
    assert (iface.id2label is not None) == TASKS[task].class_names


def test_cli_task_help_names_the_registry_tasks():
    """The CLI spells the task names out (importing the registry would slow --help): they must match it."""
    from compress.cli import main as cli
    from compress.tasks import TASKS

    def named(text: str) -> list[str]:
        return [w.strip() for w in text.split("(")[0].split("|")]

    assert named(cli.TASK_HELP) == list(TASKS)
    assert named(cli.FINETUNE_TASK_HELP) == [n for n, s in TASKS.items() if s.train_labels]
