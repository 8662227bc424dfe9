"""Side-by-side latency of a quantized model and its fp32 source: interleaved runs, medians, ratio."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.quantize.graph import session

if TYPE_CHECKING:
    import numpy as np


def compare_latency(fp32_path: Path, quant_path: Path, feed: dict[str, "np.ndarray"], runs: int = 30,
                    warmup: int = 3) -> dict[str, Any]:
    """Median ms of each model on ``feed``, runs interleaved so machine load hits both alike."""
    base, quant = session(fp32_path), session(quant_path)
    for _ in range(warmup):
        base.run(None, feed)
        quant.run(None, feed)
    t_base: list[float] = []
    t_quant: list[float] = []
    for i in range(runs):
        order = ((base, t_base), (quant, t_quant)) if i % 2 == 0 else ((quant, t_quant), (base, t_base))
        for sess, times in order:
            start = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - start) * 1000.0)
    med_b, med_q = statistics.median(t_base), statistics.median(t_quant)
    shape = list(feed["input_ids"].shape)
    return {"shape": shape, "runs": runs, "fp32_ms": round(med_b, 3), "quant_ms": round(med_q, 3),
            "ratio": round(med_q / med_b, 4), "slower_than_fp32": med_q > med_b}
