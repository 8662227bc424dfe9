"""Process-rank helpers for runs launched with torchrun / accelerate launch."""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True in single-process runs and on rank 0 of a multi-process launch."""
    return rank() == 0
