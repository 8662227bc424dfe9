"""Tokenizer folders written by other tools load, or fail in one line."""

from __future__ import annotations

import json

import pytest

from compress.core.errors import ModelLoadError
from compress.model.loading import load_tokenizer
from tests.tiny import save_tokenizer


def test_an_unknown_tokenizer_class_falls_back_to_its_tokenizer_json(tmp_path):
    """transformers 5 writes tokenizer_class TokenizersBackend (model2vec's ONNX folders do): this transformers
    does not know it, so the folder's tokenizer.json is loaded as a PreTrainedTokenizerFast."""
    original = save_tokenizer(tmp_path)
    config_file = tmp_path / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "TokenizersBackend"
    config_file.write_text(json.dumps(config))
    tok = load_tokenizer(str(tmp_path))
    texts = ["The function returns a list.", "A module is a file."]
    assert tok(texts)["input_ids"] == original(texts)["input_ids"]
    assert tok.pad_token == "[PAD]" and tok.pad_token_id == original.pad_token_id
    assert tok(texts, padding=True, return_tensors="np")["attention_mask"].shape[0] == 2


def test_an_unknown_tokenizer_class_without_tokenizer_json_is_one_line(tmp_path):
    save_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    config_file = tmp_path / "tokenizer_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "tokenizer_class": "NoSuchTokenizer"}))
    with pytest.raises(ModelLoadError, match=r"cannot load the tokenizer of .*NoSuchTokenizer"):
        load_tokenizer(str(tmp_path))
