"""Config of the benchmark stage."""

from __future__ import annotations

from pydantic import Field

from compress.config_base import Section


class BenchConfig(Section):
    """What to measure and how long."""

    batch_size: int = Field(1, ge=1)
    warmup: int = Field(10, ge=0, description="untimed runs before measuring")
    min_runs: int = Field(50, ge=1)
    min_seconds: float = Field(2.0, ge=0)
    threads: int | None = Field(None, ge=1, description="intra-op threads (None: all cores)")
    max_eval_samples: int = Field(500, ge=2)
