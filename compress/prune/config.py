"""Config of the structural pruning stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.config_base import Section


class PruneConfig(Section):
    """What to remove and how much; see docs/pruning.md."""

    ffn_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of FFN intermediate neurons removed")
    head_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of attention heads removed")
    importance: Literal["l1", "l2", "taylor"] = "l2"
    round_to: int | None = Field(8, ge=1, description="keep FFN widths a multiple of this (INT8 kernel friendly)")
