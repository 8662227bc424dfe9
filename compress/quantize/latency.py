"""Side-by-side latency of a quantized model and its fp32 source: interleaved runs, p50s, ratio.

Timed by the measuring layer's loop (``benchmarks.stats``): the same ``measure`` and ``summarize`` (p50)
as the harness and the device runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.sessions import open_session
from benchmarks.stats import measure_interleaved, summarize

if TYPE_CHECKING:
    import numpy as np


def compare_latency(fp32_path: Path, quant_path: Path, feed: dict[str, "np.ndarray"], runs: int = 30,
                    warmup: int = 3) -> dict[str, Any]:
    """p50 ms of each model on ``feed``, runs interleaved so machine load hits both alike."""
    base, quant = open_session(fp32_path), open_session(quant_path)
    t_base, t_quant = measure_interleaved([lambda: base.run(None, feed), lambda: quant.run(None, feed)], runs, warmup)
    med_b, med_q = summarize(t_base)["p50"], summarize(t_quant)["p50"]
    shape = list(feed["input_ids"].shape)
    return {"shape": shape, "runs": runs, "fp32_ms": round(med_b, 3), "quant_ms": round(med_q, 3),
            "ratio": round(med_q / med_b, 4), "slower_than_fp32": med_q > med_b}
