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
from compress.core.errors import EdgepressError

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


def runtime_rows(local: list[dict[str, Any]], winner: dict[str, Any], baseline: dict[str, Any] | None,
                 big: int | None) -> list[dict[str, Any]]:
    """The winner's model in each runtime the bench measured (the search publishes it per listed runtime), each
    with its batch-1 p50, batch-``big`` throughput, session memory and both ratios to Optimum INT8."""
    from compress.model.formats import runtime_of

    rows = []
    for m in [winner, *(m for m in local if m["name"].startswith("search-winner-"))]:
        rows.append({"name": m["name"], "runtime": runtime_of(m["format"]),
                     "precision": m["precision"], "size_mb": m["size_mb"], "retention": m.get("retention"),
                     "p50_ms": _p50(m), "throughput": _throughput(m, big) if big else None,
                     "session_mb": _session_mb(m),
                     "speedup_vs_baseline": _ratio(_p50(baseline), _p50(m)) if baseline else None,
                     "throughput_vs_baseline": (_ratio(_throughput(m, big), _throughput(baseline, big))
                                                if baseline and big else None)})
    return rows


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
    out["runtimes"] = runtime_rows(local, winner, baseline, big)
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
        if len(h["runtimes"]) > 1:
            lines += runtimes_markdown(h)
    return "\n".join(lines)


def runtimes_markdown(h: dict[str, Any]) -> list[str]:
    """The winner's model in every runtime, beside the teacher and Optimum INT8: one row each."""
    b = h["sweep_batch"]
    lines = [f"The chosen model in each runtime (batch-1 p50, items/s at batch {b or '–'}, session memory; × Optimum "
             f"INT8 at batch 1 / its throughput at batch {b or '–'}):", "",
             f"| model | runtime | precision | size MB | test retention | p50 ms b1 | items/s b{b or '–'} | session MB "
             "| × Optimum INT8 b1 | × Optimum INT8 throughput |", "|---|---|---|---|---|---|---|---|---|---|"]
    for role in ("teacher", "baseline"):
        m = h[role]
        if m is not None:
            lines.append(f"| {m['name']} | {m['format']} | {m['precision']} | {m['size_mb']:.1f} | "
                         f"{_fmt(m.get('retention') and 100 * m['retention'], '.1f', ' %')} | {_fmt(_p50(m), '.2f')} | "
                         f"{_fmt(_throughput(m, b) if b else None, '.0f')} | {_fmt(_session_mb(m), '.0f')} | – | – |")
    for r in h["runtimes"]:
        lines.append(f"| {r['name']} | {r['runtime']} | {r['precision']} | {r['size_mb']:.1f} | "
                     f"{_fmt(r['retention'] and 100 * r['retention'], '.1f', ' %')} | {_fmt(r['p50_ms'], '.2f')} | "
                     f"{_fmt(r['throughput'], '.0f')} | {_fmt(r['session_mb'], '.0f')} | "
                     f"{_fmt(r['speedup_vs_baseline'], '.2f', '×')} | {_fmt(r['throughput_vs_baseline'], '.2f', '×')} |")
    return lines + [""]

