"""Headline table for BENCHMARKS.md from a finished search+bench run: the chosen model against the teacher
(PyTorch fp32) and the Optimum-only baseline, with issue 8's targets checked.

    python experiments/headline.py runs/stsb-minilm [runs/sst2-minilm ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for a checkout that is not installed


TARGETS = {"retention": 0.97, "speedup_vs_teacher": 8.0, "speedup_vs_baseline": 2.5, "size_fraction": 1 / 6}


def headline(run_dir: Path) -> dict[str, Any]:
    """Numbers of one run: teacher, baseline and winner entries of report.json, their ratios, the checks."""
    report = json.loads((run_dir / "report.json").read_text())
    local = [m for m in report["models"] if m["target"] == "local" and m["status"] == "ok"]
    teacher = next(m for m in local if m["role"] == "teacher")
    baseline = next((m for m in local if m["role"] == "baseline" and m["precision"] == "int8"), None)
    winner = next((m for m in local if m["name"].startswith("search-winner")), None)
    if winner is None:
        raise SystemExit(f"{run_dir}: report.json has no search-winner entry (run a search stage before bench)")
    p50 = lambda m: m["latency_ms"]["p50"]  # noqa: E731
    out = {"run": run_dir.name, "metric": report["data"]["metric"], "rows": report["data"]["rows"],
           "teacher": teacher, "baseline": baseline, "winner": winner,
           "retention": winner["retention"], "speedup_vs_teacher": p50(teacher) / p50(winner),
           "speedup_vs_baseline": p50(baseline) / p50(winner) if baseline else None,
           "size_fraction": winner["size_mb"] / teacher["size_mb"]}
    out["checks"] = {
        "retention": out["retention"] is not None and out["retention"] >= TARGETS["retention"],
        "speedup_vs_teacher": out["speedup_vs_teacher"] >= TARGETS["speedup_vs_teacher"],
        "speedup_vs_baseline": out["speedup_vs_baseline"] is not None
        and out["speedup_vs_baseline"] >= TARGETS["speedup_vs_baseline"],
        "size_fraction": out["size_fraction"] <= TARGETS["size_fraction"],
    }
    return out


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """One table per run: teacher, baseline, winner; then the ratio checks."""
    lines = []
    for h in rows:
        lines += [f"**{h['run']}** ({h['metric']} on {h['rows']} test rows)", "",
                  "| model | format | size MB | metric | retention | p50 ms | p90 ms |", "|---|---|---|---|---|---|---|"]
        for role in ("teacher", "baseline", "winner"):
            m = h[role]
            if m is None:
                continue
            ret = "–" if m.get("retention") is None else f"{100 * m['retention']:.1f} %"
            lines.append(f"| {m['name']} | {m['format']}/{m['precision']} | {m['size_mb']:.1f} | "
                         f"{m['quality']['value']:.4f} | {ret} | {m['latency_ms']['p50']:.2f} | "
                         f"{m['latency_ms']['p90']:.2f} |")
        ok = lambda k: "✔" if h["checks"][k] else "✘"  # noqa: E731
        base = "–" if h["speedup_vs_baseline"] is None else f"{h['speedup_vs_baseline']:.2f}×"
        lines += ["", f"- retention {100 * h['retention']:.1f} % (≥ 97 %) {ok('retention')}; "
                      f"speed-up vs teacher {h['speedup_vs_teacher']:.2f}× (≥ 8×) {ok('speedup_vs_teacher')}; "
                      f"vs Optimum baseline {base} (≥ 2.5×) {ok('speedup_vs_baseline')}; "
                      f"file {h['size_fraction']:.3f} of the teacher's (≤ 1/6 = 0.167) {ok('size_fraction')}", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run folders holding report.json (runs/<name>)")
    args = ap.parse_args()
    print(to_markdown([headline(r) for r in args.runs]))


if __name__ == "__main__":
    main()
