"""Typed reads of a bench report.json (schema: benchmarks/report.schema.json) for the readers outside benchmarks:
the package stage picks the teacher's and the shipped file's rows, the model card prints them, the search stage
reads its candidates' rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.core.errors import EdgepressError


@dataclass
class ModelEntry:
    """One measured model on one target (a report's ``models[]`` entry), the fields a reader shows."""

    name: str
    role: str
    format: str
    precision: str
    path: str
    target: str
    status: str
    size_mb: float | None
    p50_ms: float | None
    p90_ms: float | None
    metric: str | None
    value: float | None
    retention: float | None

    @classmethod
    def from_dict(cls, e: dict[str, Any]) -> "ModelEntry":
        """The entry of ``e`` (schema: $defs/model); missing required keys are an EdgepressError naming them."""
        missing = [k for k in ("name", "role", "format", "precision", "path", "target", "status") if k not in e]
        if missing:
            raise EdgepressError(f"bench report entry {e.get('name', '?')!r} lacks {', '.join(missing)} "
                                 "(benchmarks/report.schema.json); re-run the bench stage")
        q, lat = e.get("quality") or {}, e.get("latency_ms") or {}
        return cls(name=e["name"], role=e["role"], format=e["format"], precision=e["precision"], path=e["path"],
                   target=e["target"], status=e["status"], size_mb=e.get("size_mb"), p50_ms=lat.get("p50"),
                   p90_ms=lat.get("p90"), metric=q.get("metric"), value=q.get("value"), retention=e.get("retention"))


def model_entries(report: dict[str, Any], target: str | None = None) -> list[ModelEntry]:
    """The report's entries (those measured on ``target`` when given), typed."""
    return [ModelEntry.from_dict(e) for e in report.get("models", []) if target is None or e.get("target") == target]


@dataclass
class DataInfo:
    """The rows quality was measured on (the report's ``data``)."""

    source: str | None = None
    rows: int | None = None
    kind: str | None = None
    metric: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "DataInfo":
        d = d or {}
        return cls(source=d.get("source"), rows=d.get("rows"), kind=d.get("kind"), metric=d.get("metric"))


@dataclass
class BenchRows:
    """The teacher's and the shipped file's local rows of a report, with what they were measured on and where."""

    teacher: ModelEntry | None
    chosen: ModelEntry | None
    data: DataInfo
    cpu: str | None = None
    cores: int | None = None
    batch_sizes: list[int] = field(default_factory=list)
    realistic: bool = False

    @classmethod
    def from_report(cls, report: dict[str, Any], chosen_path: Path) -> "BenchRows":
        """Rows of ``report`` (a parsed report.json): the local teacher, and the local entry whose file is
        ``chosen_path``."""
        chosen = str(Path(chosen_path).resolve())
        local = model_entries(report, "local")
        device = (report.get("devices") or {}).get("local") or {}
        settings = report.get("settings") or {}
        return cls(teacher=next((e for e in local if e.role == "teacher"), None),
                   chosen=next((e for e in local if str(Path(e.path).resolve()) == chosen), None),
                   data=DataInfo.from_dict(report.get("data")), cpu=device.get("cpu"), cores=device.get("cores"),
                   batch_sizes=list(settings.get("batch_sizes") or []), realistic=bool(settings.get("realistic")))

    @classmethod
    def load(cls, path: Path | None, chosen_path: Path) -> "BenchRows | None":
        """The rows of the report.json at ``path``; None when there is none."""
        if path is None or not Path(path).is_file():
            return None
        try:
            report = json.loads(Path(path).read_text())
        except ValueError as exc:
            raise EdgepressError(f"bench report '{path}' is not JSON: {exc}") from None
        return cls.from_report(report, chosen_path)
