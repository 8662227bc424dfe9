"""The search's own report: candidates.json, search.md (every candidate and its verdict), search_pareto.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compress.search.select import Candidate, Choice


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def to_markdown(cands: list[Candidate], choice: Choice, teacher: dict[str, Any], targets: dict[str, Any],
                device: str, select_on: str = "test") -> str:
    """One table of every candidate, fastest first, with the Pareto front marked and each verdict."""
    t_p50 = teacher.get("p50_ms")
    both = select_on == "eval"  # chosen on eval, test reported beside it
    split_cols = f"Metric ({select_on}) | Retention ({select_on}) | Retention (test)" if both else "Metric | Retention"
    lines = [
        "# Target-aware search",
        "",
        f"Targets: {', '.join(f'{k}={v}' for k, v in targets.items() if v is not None)}. Measured on: {device}.",
        f"Teacher: {teacher.get('name')} ({teacher.get('format')}), {teacher.get('metric')} "
        f"{_fmt(teacher.get('value'), '.4f')}" + (f" on {select_on}, {_fmt(teacher.get('test_value'), '.4f')} on test"
                                                  if both else "") +
        f", p50 {_fmt(t_p50, '.2f')} ms, {_fmt(teacher.get('size_mb'), '.1f')} MB.",
        f"The winner is chosen by retention on the **{select_on}** split.",
        "",
        f"**Choice:** {choice.reason}" + ("" if choice.meets_targets else " — **targets not met**"),
        "",
        f"| Candidate | Runtime | Depth | Pruned | Precision | Size MB | {split_cols} | p50 ms | p90 ms "
        "| Speed-up vs teacher | Pareto | Verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if both else ""),
    ]
    for c in sorted(cands, key=lambda c: (c.p50_ms is None, c.p50_ms or 0.0)):
        speed = f"{t_p50 / c.p50_ms:.1f}×" if t_p50 and c.p50_ms else "–"
        lines.append(f"| {c.name} | {c.runtime} | {c.depth} | {c.pruned} | {c.precision} | {c.size_mb:.1f} | "
                     f"{_fmt(c.value, '.4f')} | {_fmt(c.retention, '.3f')} | "
                     + (f"{_fmt(c.test_retention, '.3f')} | " if both else "") + f"{_fmt(c.p50_ms, '.2f')} | "
                     f"{_fmt(c.p90_ms, '.2f')} | {speed} | {'★' if c.on_front else ''} | {c.verdict} |")
    lines += ["", "Pareto = no other candidate is both at least as fast and at least as accurate.", ""]
    return "\n".join(lines)


def plot(cands: list[Candidate], choice: Choice, floor: float | None, path: Path, select_on: str = "test") -> Path | None:
    """Latency (x) against retention (y); the front joined by a line, the winner starred, the floor dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = [c for c in cands if c.measured]
    if not pts:
        return None
    fig = Figure(figsize=(7, 4.5), dpi=120)  # its own canvas: matplotlib's global backend is left alone
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    max_size = max(c.size_mb for c in pts) or 1.0
    ax.scatter([c.p50_ms for c in pts], [100 * c.retention for c in pts],
               s=[30 + 400 * c.size_mb / max_size for c in pts], alpha=0.5, edgecolors="black", linewidths=0.5,
               label="candidate (marker size = file size)")
    front = sorted((c for c in pts if c.on_front), key=lambda c: c.p50_ms)
    ax.plot([c.p50_ms for c in front], [100 * c.retention for c in front], "-", color="C1", label="Pareto front")
    for c in pts:
        ax.annotate(c.name, (c.p50_ms, 100 * c.retention), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if floor is not None:
        ax.axhline(100 * floor, ls="--", color="gray", lw=1, label=f"floor {floor:.0%}")
    if choice.winner is not None and choice.winner.measured:
        w = choice.winner
        ax.scatter([w.p50_ms], [100 * w.retention], marker="*", s=250, color="C3", zorder=5, label=f"chosen: {w.name}")
    ax.set_xlabel("p50 latency (ms)")
    ax.set_ylabel(f"retention (% of teacher, {select_on} split)")
    ax.set_title("Search candidates")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def write(out_dir: Path, cands: list[Candidate], choice: Choice, teacher: dict[str, Any],
          targets: dict[str, Any], device: str, select_on: str = "test") -> dict[str, str]:
    """candidates.json, search.md and search_pareto.png in ``out_dir``; returns their names."""
    data = {"targets": targets, "device": device, "teacher": teacher, "select_on": select_on,
            "winner": choice.winner.name if choice.winner else None, "meets_targets": choice.meets_targets,
            "reason": choice.reason, "candidates": [c.to_dict() for c in cands]}
    (out_dir / "candidates.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "search.md").write_text(to_markdown(cands, choice, teacher, targets, device, select_on))
    names = {"candidates": "candidates.json", "search_report": "search.md"}
    if plot(cands, choice, None if targets.get("latency_budget_ms") else targets.get("retention_floor"),
            out_dir / "search_pareto.png", select_on):
        names["search_plot"] = "search_pareto.png"
    return names
