"""Issue 17's headline table for BENCHMARKS.md from a finished search + bench run: the chosen model against the
teacher (PyTorch fp32), the Optimum-only INT8 baseline and the teacher as ORT fp32 (fused), every target checked.

    edgepress bench headline runs/stsb-minilm [runs/sst2-minilm ...]

All ratios divide two numbers of the run's one bench stage (report.json); the dev retention the winner was chosen
by comes from the search stage's candidates.json beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.report import load_report
from compress.errors import EdgepressError

TARGETS = {"retention": 0.97, "size_fraction": 1 / 8, "speedup_vs_teacher": 10.0, "speedup_vs_baseline": 3.0,
           "throughput_vs_baseline": 3.0, "session_fraction": 1 / 4}


def _p50(m: dict[str, Any], batch: int | None = None) -> float | None:
    if batch is None:
        return m["latency_ms"]["p50"]
    point = next((p for p in m.get("points", []) if p["batch"] == batch), None)
    return None if point is None else point["latency_ms"]["p50"]


def _throughput(m: dict[str, Any] | None, batch: int) -> float | None:
    point = None if m is None else next((p for p in m.get("points", []) if p["batch"] == batch), None)
    return None if point is None else point["latency_ms"]["throughput"]


def _session_mb(m: dict[str, Any] | None) -> float | None:
    return None if m is None else (m.get("session_memory") or {}).get("session_mb")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def dev_retention(run_dir: Path) -> float | None:
    """The winner's retention on the split that chose it (the search's candidates.json), None without a search."""
    found = sorted(run_dir.glob("[0-9][0-9]-search/candidates.json"))
    if not found:
        return None
    data = json.loads(found[-1].read_text())
    winner = next((c for c in data["candidates"] if c["name"] == data.get("winner")), None)
    return None if winner is None else winner.get("retention")


def headline(run_dir: str | Path) -> dict[str, Any]:
    """Numbers of one run: teacher, baselines and winner entries of report.json, their ratios, the checks."""
    report = load_report(run_dir)
    run_dir = Path(report["_path"]).parent if Path(run_dir).is_file() else Path(run_dir)
    local = [m for m in report["models"] if m["target"] == "local" and m["status"] == "ok"]
    teacher = next((m for m in local if m["role"] == "teacher"), None)
    if teacher is None:
        raise EdgepressError(f"{report['_path']}: no local teacher entry measured (bench the run with its teacher)")
    by_name = {m["name"]: m for m in local}
    baseline = by_name.get("optimum-int8-dynamic") or next(
        (m for m in local if m["role"] == "baseline" and m["precision"] == "int8"), None)
    ort_fp32 = by_name.get("optimum-onnx-fused") or by_name.get("optimum-onnx")
    winner = next((m for m in local if m["name"].startswith("search-winner (")), None)
    if winner is None:
        raise EdgepressError(f"{report['_path']}: no search-winner entry (run a search stage before bench)")
    sweep = sorted({p["batch"] for p in winner.get("points", [])} - {winner["points"][0]["batch"]}) \
        if winner.get("points") else []
    big = sweep[-1] if sweep else None
    out = {"run": run_dir.name, "metric": report["data"]["metric"], "rows": report["data"]["rows"],
           "cpu": report.get("devices", {}).get("local", {}).get("cpu"),
           "teacher": teacher, "baseline": baseline, "ort_fp32": ort_fp32, "winner": winner,
           "retention": winner["retention"], "dev_retention": dev_retention(run_dir),
           "size_fraction": winner["size_mb"] / teacher["size_mb"],
           "speedup_vs_teacher": _ratio(_p50(teacher), _p50(winner)),
           "speedup_vs_baseline": _ratio(_p50(baseline), _p50(winner)) if baseline else None,
           "sweep_batch": big,
           "throughput_vs_baseline": _ratio(_throughput(winner, big), _throughput(baseline, big)) if big else None,
           "from_text_ms": (winner.get("end_to_end") or {}).get("latency_ms", {}).get("p50"),
           "session_fraction": _ratio(_session_mb(winner), _session_mb(ort_fp32))}
    checks = {k: out[k] is not None and (out[k] <= t if k.endswith("fraction") else out[k] >= t)
              for k, t in TARGETS.items()}
    checks["from_text"] = out["from_text_ms"] is not None
    out["checks"] = checks
    return out


def _fmt(v: float | None, spec: str, suffix: str = "") -> str:
    return "–" if v is None else f"{format(v, spec)}{suffix}"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """One table per run: teacher, baselines, winner; then issue 17's targets, each with its verdict."""
    lines = []
    for h in rows:
        lines += [f"**{h['run']}** ({h['metric']} on {h['rows']} test rows; {h['cpu'] or 'CPU unknown'})", "",
                  "| model | format | size MB | metric | retention | p50 ms | p90 ms |", "|---|---|---|---|---|---|---|"]
        for role in ("teacher", "ort_fp32", "baseline", "winner"):
            m = h[role]
            if m is None:
                continue
            ret = "–" if m.get("retention") is None else f"{100 * m['retention']:.1f} %"
            lines.append(f"| {m['name']} | {m['format']}/{m['precision']} | {m['size_mb']:.1f} | "
                         f"{m['quality']['value']:.4f} | {ret} | {m['latency_ms']['p50']:.2f} | "
                         f"{m['latency_ms']['p90']:.2f} |")
        ok = lambda k: "✔" if h["checks"][k] else "✘"  # noqa: E731
        dev = "" if h["dev_retention"] is None else f" (dev {100 * h['dev_retention']:.1f} %)"
        b = h["sweep_batch"]
        lines += ["", "| what | target | measured |", "| --- | --- | --- |",
                  f"| test retention, chosen on dev | ≥ 97 % | {_fmt(h['retention'] and 100 * h['retention'], '.1f', ' %')}"
                  f"{dev} {ok('retention')} |",
                  f"| file size | ≤ 1/8 of the teacher's | {_fmt(h['size_fraction'] and 1 / h['size_fraction'], '.2f')}× "
                  f"smaller {ok('size_fraction')} |",
                  f"| batch-1 p50 vs the teacher (PyTorch fp32) | ≥ 10× | {_fmt(h['speedup_vs_teacher'], '.2f', '×')} "
                  f"{ok('speedup_vs_teacher')} |",
                  f"| batch-1 p50 vs Optimum INT8 | ≥ 3× | {_fmt(h['speedup_vs_baseline'], '.2f', '×')} "
                  f"{ok('speedup_vs_baseline')} |",
                  f"| throughput at batch {b or '–'} vs Optimum INT8 | ≥ 3× | "
                  f"{_fmt(h['throughput_vs_baseline'], '.2f', '×')} {ok('throughput_vs_baseline')} |",
                  f"| from-text latency | reported | {_fmt(h['from_text_ms'], '.2f', ' ms')} {ok('from_text')} |",
                  f"| session memory vs the teacher's ORT fp32 session | ≤ 1/4 | "
                  f"1/{_fmt(h['session_fraction'] and 1 / h['session_fraction'], '.2f')} {ok('session_fraction')} |", ""]
    return "\n".join(lines)

