"""A quantize report as the stage writes it (schema-valid: tests/quantize/test_report.py checks that), for tests of
its readers that do not quantize anything."""

from __future__ import annotations

from typing import Any


def method_result(method: str, retention: float, size_mb: float, *, ratio: float = 0.6, meets_floor: bool = True,
                  precision: str = "int8", prefix: str = "student") -> dict[str, Any]:
    """One method's record: a single passing (or failing) base attempt, timed at ``ratio`` x fp32."""
    tag = f"int8-{method}" if precision == "int8" else precision
    return {
        "attempts": [{"label": "base", "settings": {"method": method, "per_channel": False, "reduce_range": False,
                                                    "weight_type": "qint8", "embedding_bits": 8, "float_blocks": []},
                      "spearman": 0.8, "fp32_spearman": 0.81, "fidelity_cosine": 0.999, "retention": retention,
                      "basis": "spearman", "passed": meets_floor, "seconds": 0.1}],
        "chosen": 0, "meets_floor": meets_floor, "retention": retention, "retention_floor": 0.97, "graph": "fused",
        "latency": {"shape": [8, 128], "runs": 30, "fp32_ms": 10.0, "quant_ms": 10.0 * ratio, "ratio": ratio,
                    "slower_than_fp32": ratio > 1},
        "flags": [] if meets_floor else [f"retention {retention} < floor 0.97"],
        "path": f"model.{tag}.onnx", "variant": f"{prefix}-{tag}", "precision": precision, "size_mb": size_mb,
    }


def sample_report(methods: dict[str, dict[str, Any]], recommended: str | None) -> dict[str, Any]:
    """A whole report over ``methods`` (from ``method_result``), recommending ``recommended`` (None: fp32 kept)."""
    if recommended is None:
        rec: dict[str, Any] = {"variant": "fp32", "path": None,
                               "reason": "no INT8 variant both met the retention floor and ran faster than fp32 on this CPU"}
    else:
        r = methods[recommended]
        rec = {"variant": r["variant"], "method": recommended, "path": r["path"], "latency_ratio": r["latency"]["ratio"],
               "reason": f"fastest INT8 variant meeting the floor ({r['latency']['ratio']:.2f}x fp32 latency)"}
    return {
        "source": "02-export/model.onnx", "task": "embedding", "methods": methods,
        "cpu": {"arch": "x86_64", "model": "test cpu", "isa": "avx2", "avx2": True, "avx512": False, "vnni": False,
                "amx": False, "arm_dotprod": False, "source": "this machine"},
        "int8_recipe": {"weight_type": "qint8", "activation_type": "quint8", "reduce_range": True,
                        "reason": "avx2: U8S8 with reduce_range", "chosen_for": "avx2 (this machine)"},
        "graph": {"optimized": True, "fused_ops": {"Attention": 2}, "pre_process": {"skip_optimization": True},
                  "errors": []},
        "eval": {"used": "eval", "rows": 10, "kind": "sts", "source": "pairs.tsv", "spearman": 0.81},
        "skipped": {},
        "variants": [{"name": "student-fp32-opt", "format": "onnx", "path": "model.opt.onnx", "precision": "fp32"}]
        + [{"name": r["variant"], "format": "onnx", "path": r["path"], "precision": r["precision"]}
           for r in methods.values()],
        "calibration": None, "fp32_size_mb": 86.2, "recommended": rec, "seconds": 12.5, "runtimes": [],
    }
