"""Config of the vocabulary-trimming stage."""

from __future__ import annotations

from pydantic import Field, model_validator

from compress.core.config_base import Section


class VocabCorpus(Section):
    """Extra text whose tokens are kept (a general corpus beside the training data)."""

    source: str = Field(..., description="file path, hub:NAME, or builtin:pydoc")
    text_column: str = "sentence"
    limit: int | None = Field(None, ge=1, description="first N rows only")


class VocabConfig(Section):
    """Which tokens stay: those the training text (+ ``corpus``) uses, most frequent first, within the targets."""

    max_size: int | None = Field(None, ge=8, description="keep at most this many tokens (specials included)")
    coverage: float | None = Field(None, gt=0, le=1, description="keep the most frequent tokens until they cover this "
                                                                "share of the training text's tokens")
    min_count: int = Field(1, ge=1, description="a token must occur this often in the text to be kept")
    keep_characters: bool = Field(True, description="keep every single-character token (and its ## form), so a "
                                                    "word made of dropped pieces is spelled out instead of [UNK]")
    corpus: list[VocabCorpus] = Field(default_factory=list, description="more text whose tokens are kept")
    max_length: int = Field(512, ge=8, description="truncation when counting tokens")

    @model_validator(mode="after")
    def _one_target(self) -> "VocabConfig":
        if self.max_size is not None and self.coverage is not None:
            raise ValueError("give vocab.max_size or vocab.coverage, not both")
        return self
