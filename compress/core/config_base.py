"""Base class for every config section: strict (unknown keys are errors) and JSON round-trippable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. Unknown keys fail validation; values are re-checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def optimizer_steps(cls: type, v: int) -> int:
    """A ``max_steps`` field: a positive number of optimizer steps, or -1 (train for ``epochs``)."""
    if v == 0 or v < -1:
        raise ValueError("max_steps must be a positive number of optimizer steps, or -1 to train for `epochs`")
    return v
