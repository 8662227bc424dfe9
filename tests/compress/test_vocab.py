"""Vocabulary trimming: tokenizer and embeddings stay consistent; kept text is bit-identical; dropped -> [UNK]."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.data.rows import builtin_pydoc_sentences
from compress.model.loading import load_model, load_tokenizer
from compress.vocab.config import VocabConfig
from compress.vocab.trim import coverage, select_tokens, token_counts, trim_model_folder

DOMAIN = builtin_pydoc_sentences()[:200]


def _trim(model_dir: Path, out: Path, task: str = "embedding", **cfg):
    model, tok = load_model(str(model_dir), task), load_tokenizer(str(model_dir))
    keep = select_tokens(tok, token_counts(tok, DOMAIN, 128), VocabConfig(**cfg))
    original = load_model(str(model_dir), task)
    model, trimmed = trim_model_folder(model, tok, keep, out)
    return original, tok, model, trimmed, keep


def test_tokenizer_and_embeddings_stay_consistent(tiny_model_dir, tmp_path):
    original, tok, model, trimmed, keep = _trim(tiny_model_dir("bert", "embedding"), tmp_path / "t", max_size=300)
    assert len(trimmed) == len(keep) == model.config.vocab_size == model.get_input_embeddings().num_embeddings == 300
    assert len(tok) > 300
    for role in ("pad", "unk", "cls", "sep", "mask"):
        tid = getattr(trimmed, f"{role}_token_id")
        assert tid is not None and trimmed.convert_ids_to_tokens(tid) == getattr(tok, f"{role}_token")
    assert model.config.pad_token_id == trimmed.pad_token_id
    old_rows = original.get_input_embeddings().weight[torch.tensor(keep)]
    assert torch.equal(model.get_input_embeddings().weight, old_rows)


def test_text_with_only_kept_tokens_gives_identical_ids_and_outputs(tiny_model_dir, tmp_path):
    original, tok, model, trimmed, keep = _trim(tiny_model_dir("bert", "embedding"), tmp_path / "t", max_size=300)
    kept = set(keep)
    inside = [s for s in DOMAIN if all(i in kept for i in tok(s)["input_ids"])][:8]
    assert len(inside) >= 3
    for text in inside:
        old, new = tok(text, return_tensors="pt"), trimmed(text, return_tensors="pt")
        assert tok.convert_ids_to_tokens(old["input_ids"][0]) == trimmed.convert_ids_to_tokens(new["input_ids"][0])
        assert [keep[i] for i in new["input_ids"][0].tolist()] == old["input_ids"][0].tolist()
        with torch.no_grad():
            a, b = original(**old).last_hidden_state, model(**new).last_hidden_state
        assert torch.equal(a, b)  # bit-identical


def test_dropped_token_maps_to_unk_or_is_spelled_with_kept_pieces(tiny_model_dir, tmp_path):
    model_dir = tiny_model_dir("bert", "embedding")
    tok = load_tokenizer(str(model_dir))
    counts = token_counts(tok, DOMAIN, 128)
    _, _, _, strict, keep = _trim(model_dir, tmp_path / "strict", keep_characters=False, max_size=40)
    kept_tokens = set(strict.get_vocab())
    # a dropped word no kept token starts: WordPiece finds no piece to begin with, so the word is [UNK]
    starts = [k for k in kept_tokens if not k.startswith("##") and k.isalpha()]
    rare = next(t for t, i in tok.get_vocab().items()
                if i not in counts and t.isalpha() and len(t) > 3 and not any(t.startswith(k) for k in starts))
    assert strict.tokenize(rare) == [strict.unk_token]
    _, _, _, spelled, _ = _trim(model_dir, tmp_path / "spelled", max_size=300)
    pieces = spelled.tokenize(rare)
    assert spelled.unk_token not in pieces and len(pieces) > 1  # re-spelled with kept characters
    assert spelled.convert_tokens_to_string(pieces) == rare


def test_coverage_counts_kept_tokens_and_new_unks(tiny_model_dir, tmp_path):
    original, tok, model, trimmed, keep = _trim(tiny_model_dir("bert", "embedding"), tmp_path / "t",
                                                keep_characters=False, max_size=100)
    held_out = builtin_pydoc_sentences()[300:340]
    cov = coverage(tok, trimmed, keep, held_out, 128)
    ids = [i for ids in tok(held_out, add_special_tokens=False)["input_ids"] for i in ids]
    assert cov.tokens == len(ids) and cov.kept == sum(i in set(keep) for i in ids)
    assert 0 < cov.share_kept < 1 and cov.new_unk > 0


def test_max_size_below_the_tokens_that_always_stay_is_refused(tiny_model_dir):
    from compress.core.errors import EdgepressError

    tok = load_tokenizer(str(tiny_model_dir("bert", "embedding")))
    with pytest.raises(EdgepressError, match="vocab.max_size=10"):
        select_tokens(tok, token_counts(tok, DOMAIN, 128), VocabConfig(max_size=10))


def test_roberta_style_tokenizers_are_refused(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from compress.core.errors import EdgepressError

    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab={"a": 0, "<unk>": 1}, merges=[],
                                                                              unk_token="<unk>")), unk_token="<unk>")
    with pytest.raises(EdgepressError, match="WordPiece"):
        select_tokens(bpe, token_counts(bpe, ["a"], 8), VocabConfig())


def test_trim_vocab_stage_output_loads_with_transformers_sentence_transformers_and_the_bundle(tmp_path):
    """distill -> trim_vocab -> export (bundle): from_pretrained, SentenceTransformer and reference.py agree."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from compress.config import load_config
    from compress.run.pipeline import run_pipeline
    from tests.compress.test_package import QUICK_BENCH, cosine, make_st_teacher

    teacher = make_st_teacher(tmp_path / "teacher", pooling="mean")
    cfg = load_config(None, base={
        "name": "v", "output_dir": str(tmp_path / "runs"), "stages": ["distill", "trim_vocab", "export", "quantize"],
        "teacher": {"model": str(teacher)}, "data": {"train": "builtin:pydoc", "max_train_samples": 300,
                                                     "max_eval_samples": 40},
        "student": {"num_layers": 1}, "distill": {"max_steps": 2, "batch_size": 8}, "vocab": {"max_size": 350},
        "quantize": {"guard": {"eval_samples": 16}}, "bench": QUICK_BENCH})
    outcomes = run_pipeline(cfg)
    vocab = next(o for o in outcomes if o.name == "trim_vocab")
    assert vocab.metrics["vocab_after"] == 350 < vocab.metrics["vocab_before"]
    assert 0 < vocab.metrics["coverage_test"]["share_kept"] <= 1
    final = tmp_path / "runs" / "v" / "final"
    hf = AutoModel.from_pretrained(str(final / "model"))
    assert hf.config.vocab_size == 350 and hf.get_input_embeddings().num_embeddings == 350
    st = SentenceTransformer(str(final / "model"), device="cpu")
    assert len(st.tokenizer) == 350
    text = DOMAIN[0]
    ref = st.encode([text])
    out = subprocess.run([sys.executable, str(final / "bundle" / "reference.py"), text], capture_output=True,
                         text=True, timeout=120, check=True)
    got = np.asarray(json.loads(out.stdout)["sentence_embedding"])[None]
    assert cosine(got, ref)[0] >= 0.98  # the bundle's INT8 file against the trimmed student
    manifest = json.loads((final / "bundle" / "manifest.json").read_text())
    specials = manifest["tokenizer"]["special_tokens"]
    assert specials["cls"]["id"] == st.tokenizer.cls_token_id and specials["pad"]["id"] == st.tokenizer.pad_token_id
