"""The search's own report: candidates.json, search.md (every candidate and its verdict), search_pareto.png.

``candidates.schema.json`` beside this file is candidates.json's contract; ``validate_report`` checks a report
against it when it is written, and ``SearchReport.from_dict`` / ``.load`` give its readers attributes instead of
string keys (``Candidate`` for each row, ``TeacherSummary`` for the teacher). ``to_dict`` gives back the same JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from compress.core.errors import EdgepressError
from compress.search.select import Candidate, Choice

SCHEMA_FILE = Path(__file__).with_name("candidates.schema.json")
REPORT_FILE = "candidates.json"


def load_schema() -> dict[str, Any]:
    """The JSON schema of candidates.json."""
    return json.loads(SCHEMA_FILE.read_text())


def validate_report(report: dict[str, Any]) -> None:
    """Raise EdgepressError naming the first place ``report`` breaks candidates.schema.json (the field and why)."""
    from compress.core.schemas import check_document

    check_document(report, load_schema(), REPORT_FILE, "compress/search/candidates.schema.json")


def _field(data: dict[str, Any], key: str, where: str) -> Any:
    """``data[key]``; a missing key is an EdgepressError naming the field (a report from another version)."""
    from compress.core.schemas import required_field

    return required_field(data, key, where, "search report", "compress/search/candidates.schema.json", "search")


@dataclass
class TeacherSummary:
    """The teacher as the search measured it: size, p50 and metric on the selection split (``value``) and on test.
    A remote target's teacher runs here only, so its p50 is ``p50_ms_local`` and ``p50_ms`` is None (no ratio)."""

    name: str
    format: str
    size_mb: float | None
    metric: str | None
    value: float | None
    test_value: float | None
    p50_ms: float | None
    p50_ms_local: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "teacher/") -> "TeacherSummary":
        """The summary of ``d`` (candidates.json's ``teacher``, or the search stage.json's)."""
        required = [f.name for f in fields(cls) if f.name != "p50_ms_local"]
        return cls(**{k: _field(d, k, where) for k in required}, p50_ms_local=d.get("p50_ms_local"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``p50_ms_local`` only for a remote target)."""
        out = {"name": self.name, "format": self.format, "size_mb": self.size_mb, "metric": self.metric,
               "value": self.value, "test_value": self.test_value, "p50_ms": self.p50_ms}
        return out if self.p50_ms_local is None else {**out, "p50_ms_local": self.p50_ms_local}


@dataclass
class SearchReport:
    """candidates.json: the targets, where they were measured, the teacher, every candidate and the choice."""

    targets: dict[str, Any]  # search.targets as the run's config had it (SearchTargets)
    device: str
    teacher: TeacherSummary
    select_on: str
    winner: str | None
    meets_targets: bool
    reason: str
    candidates: list[Candidate]

    @classmethod
    def of(cls, cands: list[Candidate], choice: Choice, teacher: TeacherSummary, targets: dict[str, Any],
           device: str, select_on: str = "test") -> "SearchReport":
        """The report of a finished search."""
        return cls(targets=targets, device=device, teacher=teacher, select_on=select_on,
                   winner=choice.winner.name if choice.winner else None, meets_targets=choice.meets_targets,
                   reason=choice.reason, candidates=list(cands))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchReport":
        """The typed report of ``d`` (a parsed candidates.json)."""
        cands = [Candidate.from_dict(c, f"candidates/{i}/") for i, c in enumerate(_field(d, "candidates", ""))]
        plain = {k: _field(d, k, "") for k in ("targets", "device", "select_on", "winner", "meets_targets", "reason")}
        return cls(**plain, teacher=TeacherSummary.from_dict(_field(d, "teacher", "")), candidates=cands)

    @classmethod
    def load(cls, path: Path) -> "SearchReport":
        """Read and type a candidates.json."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise EdgepressError(f"cannot read search report '{path}': {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what candidates.json holds)."""
        return {"targets": self.targets, "device": self.device, "teacher": self.teacher.to_dict(),
                "select_on": self.select_on, "winner": self.winner, "meets_targets": self.meets_targets,
                "reason": self.reason, "candidates": [c.to_dict() for c in self.candidates]}

    @property
    def winner_candidate(self) -> Candidate | None:
        """The chosen candidate's row; None when nothing could be measured."""
        return next((c for c in self.candidates if c.name == self.winner), None)


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def to_markdown(cands: list[Candidate], choice: Choice, teacher: TeacherSummary, targets: dict[str, Any],
                device: str, select_on: str = "test") -> str:
    """One table of every candidate, fastest first, with the Pareto front marked and each verdict."""
    t_p50 = teacher.p50_ms
    both = select_on == "eval"  # chosen on eval, test reported beside it
    split_cols = f"Metric ({select_on}) | Retention ({select_on}) | Retention (test)" if both else "Metric | Retention"
    lines = [
        "# Target-aware search",
        "",
        f"Targets: {', '.join(f'{k}={v}' for k, v in targets.items() if v is not None)}. Measured on: {device}.",
        f"Teacher: {teacher.name} ({teacher.format}), {teacher.metric} "
        f"{_fmt(teacher.value, '.4f')}" + (f" on {select_on}, {_fmt(teacher.test_value, '.4f')} on test"
                                           if both else "") +
        f", p50 {_fmt(t_p50, '.2f')} ms, {_fmt(teacher.size_mb, '.1f')} MB.",
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


def write(out_dir: Path, report: SearchReport) -> dict[str, str]:
    """candidates.json (checked against its schema first), search.md and search_pareto.png in ``out_dir``; returns
    their names."""
    data = report.to_dict()
    validate_report(data)
    (out_dir / REPORT_FILE).write_text(json.dumps(data, indent=2) + "\n")
    choice = Choice(report.winner_candidate, report.meets_targets, report.reason)
    cands, targets = report.candidates, report.targets
    (out_dir / "search.md").write_text(to_markdown(cands, choice, report.teacher, targets, report.device,
                                                   report.select_on))
    names = {"candidates": REPORT_FILE, "search_report": "search.md"}
    if plot(cands, choice, None if targets.get("latency_budget_ms") else targets.get("retention_floor"),
            out_dir / "search_pareto.png", report.select_on):
        names["search_plot"] = "search_pareto.png"
    return names
