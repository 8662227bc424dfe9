"""Task families beyond sentence-level heads: token classification (NER) and extractive QA data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

TOKEN_TASKS = ("token-classification", "question-answering")  # outputs per token, trained on pre-tokenized rows


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
