"""Pipeline stage ``trim_vocab``: the upstream model with only the tokens its domain uses (embeddings + tokenizer)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.run.stages import StageInputs, StageResult, Variant

if TYPE_CHECKING:
    from compress.config import RunConfig


def domain_texts(cfg: "RunConfig", train, extra: list[Any]) -> list[str]:
    """The text whose tokens are kept: training texts (and pairs), the data.unlabeled corpora (``extra``, from the
    run's data artifact) and the vocab.corpus sources (the vocab section's own input)."""
    from compress.data.rows import distillation_texts, load_text_data

    texts = distillation_texts(train, extra)
    for src in cfg.vocab.corpus:
        texts += load_text_data(src.source, src.text_column, limit=src.limit).texts
    return texts


def run_stage(cfg: "RunConfig", inputs: StageInputs, out_dir: Path) -> StageResult:
    """Count tokens on the domain text, keep the target, rewrite embeddings + tokenizer, report coverage."""
    from compress.model.interface import interface_of, save_model
    from compress.model.loading import count_parameters, load_model, load_tokenizer
    from compress.vocab.trim import coverage, select_tokens, token_counts, trim_model_folder

    src = inputs.require("model", "trim_vocab")
    model = load_model(str(src), cfg.task)
    tokenizer = load_tokenizer(str(src))
    iface = interface_of(src, cfg.task)
    splits = inputs.data.splits()
    v = cfg.vocab
    counts = token_counts(tokenizer, domain_texts(cfg, splits.train, inputs.data.unlabeled()), v.max_length)
    keep = select_tokens(tokenizer, counts, v)
    params_before, vocab_before = count_parameters(model), len(tokenizer)
    dest = out_dir / "model"
    model, trimmed = trim_model_folder(model, tokenizer, keep, dest)
    save_model(model, trimmed, iface, dest)
    test_texts = list(splits.test.texts) + list(splits.test.pairs or [])
    cov_test = coverage(tokenizer, trimmed, keep, test_texts, v.max_length)
    cov_train = coverage(tokenizer, trimmed, keep, list(splits.train.texts)[:5000], v.max_length)
    metrics = {"vocab_before": vocab_before, "vocab_after": len(keep), "params_before": params_before,
               "params_after": count_parameters(model), "coverage_test": cov_test.to_dict(),
               "coverage_train_sample": cov_train.to_dict(), "retention": round(cov_test.share_kept, 6),
               "test_split": "test" if cfg.data.test else "eval"}
    return StageResult(outputs={"model": "model"}, metrics=metrics,
                       variants=[Variant("student-vocab", "pytorch", "model")])
