"""Choosing among measured candidates: the Pareto front (latency vs retention) and the winner, with reasons."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from compress.core.errors import EdgepressError


@dataclass
class Candidate:
    """One measured model: where it came from and what it scored on the target."""

    name: str
    path: str
    depth: int
    prune_ratio: float
    precision: str
    size_mb: float
    p50_ms: float | None
    retention: float | None  # on the selection split (search.select_on); the choice reads this
    value: float | None = None
    test_retention: float | None = None  # on the test split (the number reports quote)
    test_value: float | None = None
    p90_ms: float | None = None
    status: str = "ok"
    on_front: bool = False
    verdict: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    head_ratio: float | None = None  # share of attention heads removed; None: prune_ratio (FFN) applies to both
    runtime: str = "onnxruntime"  # what runs the file on the target (search.runtimes)

    @property
    def pruned(self) -> str:
        """``30%`` (heads and FFN alike) or ``heads 20%, FFN 70%``."""
        if self.head_ratio is None or round(self.head_ratio * 100) == round(self.prune_ratio * 100):
            return f"{self.prune_ratio:.0%}"
        return f"heads {self.head_ratio:.0%}, FFN {self.prune_ratio:.0%}"

    @property
    def measured(self) -> bool:
        return self.status == "ok" and self.p50_ms is not None and self.retention is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: a ``candidates[]`` entry of candidates.json (compress/search/candidates.schema.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "candidates/") -> "Candidate":
        """The candidate of ``d`` (a candidates.json entry, or the search stage.json's ``winner``); a missing field
        without a default is an EdgepressError naming it, a field this version does not know is refused."""
        if not isinstance(d, dict):
            raise EdgepressError(f"search report: '{where}' is {type(d).__name__}, not an object (expected by "
                                 "compress/search/candidates.schema.json); re-run the search stage")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [n for n in required if n not in d]
        if unknown or missing:
            what = f"'{where}{missing[0]}' is missing" if missing else f"'{where}{unknown[0]}' is not a candidate field"
            raise EdgepressError(f"search report: {what} (compress/search/candidates.schema.json); re-run the search "
                                 "stage")
        return cls(**d)


@dataclass
class Choice:
    """The search's answer: the winner (None when nothing was measured) and whether it meets the targets."""

    winner: Candidate | None
    meets_targets: bool
    reason: str


def mark_front(cands: list[Candidate]) -> list[Candidate]:
    """Set ``on_front`` on every measured candidate no other candidate dominates; returns the front, fastest first."""
    from benchmarks.report import pareto_front

    measured = [c for c in cands if c.measured]
    front = [measured[i] for i in pareto_front([(c.p50_ms, c.retention) for c in measured])]
    for c in cands:
        c.on_front = any(c is f for f in front)
    return front


def choose(cands: list[Candidate], floor: float, budget_ms: float | None = None,
           max_size_mb: float | None = None, tie_margin: float = 0.0) -> Choice:
    """Fastest candidate with retention >= floor (or, with a latency budget, the most accurate that fits it).

    ``tie_margin``: qualifying candidates whose p50 is within this fraction of the fastest one's count as
    equally fast (single latency runs move by a few percent), and the most accurate of them wins, then the
    smaller file; without it, candidates a few percent apart swap places between runs.
    Every candidate gets a ``verdict`` saying why it won or lost. When none qualifies, the most accurate
    measured candidate is returned with ``meets_targets`` False, so the run still has a model to report.
    """
    mark_front(cands)
    for c in cands:
        if not c.measured:
            c.verdict = f"not measured ({c.status})"
    measured = [c for c in cands if c.measured]
    if not measured:
        return Choice(None, False, "no candidate could be measured")
    fits_size = [c for c in measured if max_size_mb is None or c.size_mb <= max_size_mb]
    for c in measured:
        if c not in fits_size:
            c.verdict = f"file {c.size_mb:.1f} MB over the {max_size_mb:g} MB budget"
    if budget_ms is None:
        ok = [c for c in fits_size if c.retention >= floor]
        for c in fits_size:
            if c not in ok:
                c.verdict = f"retention {c.retention:.3f} under the floor {floor:g}"
        ok.sort(key=lambda c: (c.p50_ms, -c.retention))
        target = f"retention >= {floor:g}" + (f", file <= {max_size_mb:g} MB" if max_size_mb else "")
        if ok:
            tied = [c for c in ok if c.p50_ms <= ok[0].p50_ms * (1 + tie_margin)]
            win = max(tied, key=lambda c: (c.retention, -c.size_mb, -c.p50_ms))
            rest = [c for c in ok if c is not win]
            for c in rest:
                c.verdict = (f"as fast within {tie_margin:.0%} ({c.p50_ms:.2f} vs {win.p50_ms:.2f} ms) but less "
                             f"accurate ({c.retention:.3f} vs {win.retention:.3f}) or larger" if c in tied else
                             f"meets the floor but slower ({c.p50_ms:.2f} ms vs {win.p50_ms:.2f} ms)")
            runner_up = f"; next qualifying: {rest[0].name} at {rest[0].p50_ms:.2f} ms" if rest else ""
            how = (f"most accurate of the {len(tied)} within {tie_margin:.0%} of the fastest p50" if len(tied) > 1
                   else "fastest")
            win.verdict = f"winner: {how} meeting the targets"
            return Choice(win, True, f"{win.name}: {how} of {len(ok)} candidates with {target} "
                                     f"(p50 {win.p50_ms:.2f} ms, retention {win.retention:.3f}){runner_up}")
    else:
        ok = [c for c in fits_size if c.p50_ms <= budget_ms]
        for c in fits_size:
            if c not in ok:
                c.verdict = f"p50 {c.p50_ms:.2f} ms over the {budget_ms:g} ms budget"
        ok.sort(key=lambda c: (-c.retention, c.p50_ms))
        target = f"p50 <= {budget_ms:g} ms" + (f", file <= {max_size_mb:g} MB" if max_size_mb else "")
        if ok:
            win = ok[0]
            for c in ok[1:]:
                c.verdict = f"fits the budget but less accurate ({c.retention:.3f} vs {win.retention:.3f})"
            win.verdict = "winner: most accurate candidate within the latency budget"
            return Choice(win, True, f"{win.name}: most accurate of {len(ok)} candidates with {target} "
                                     f"(retention {win.retention:.3f}, p50 {win.p50_ms:.2f} ms)")
    best = max(measured, key=lambda c: (c.retention, -c.p50_ms))
    best.verdict = f"no candidate meets {target}; kept as the most accurate ({best.retention:.3f})"
    return Choice(best, False, best.verdict.replace("kept as", f"{best.name} kept as"))
