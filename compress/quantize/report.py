"""The quantize report (quantize_report.json, the quantize stage's stage.json metrics): its JSON schema and typed view.

``report.schema.json`` beside this file is the contract; ``validate_report`` checks a report against it when it
is written, and ``QuantizeReport.from_dict`` gives its readers (package, the CLI's headline, the Python API)
attributes instead of string keys. ``to_dict`` gives back the same JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.core.errors import EdgepressError

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
REPORT_FILE = "quantize_report.json"


def load_schema() -> dict[str, Any]:
    """The JSON schema of the quantize report; its task enum (the shipped tasks) is checked as the registry is now,
    so a task registered later is valid too."""
    from compress.tasks import TASKS

    schema = json.loads(SCHEMA_FILE.read_text())
    schema["properties"]["task"] = {"enum": list(TASKS)}
    return schema


def validate_report(report: dict[str, Any]) -> None:
    """Raise EdgepressError naming the first place ``report`` breaks report.schema.json (the field and why)."""
    from compress.core.schemas import check_document

    check_document(report, load_schema(), REPORT_FILE, "compress/quantize/report.schema.json")


def _field(data: dict[str, Any], key: str, where: str) -> Any:
    """``data[key]``; a missing key is an EdgepressError naming the field (a report from another version)."""
    from compress.core.schemas import required_field

    return required_field(data, key, where, "quantize report", "compress/quantize/report.schema.json", "quantize")


@dataclass
class Latency:
    """p50 of the fp32 and the quantized file on one batch shape, runs interleaved."""

    shape: list[int]
    runs: int
    fp32_ms: float
    quant_ms: float
    ratio: float
    slower_than_fp32: bool

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "latency/") -> "Latency":
        return cls(**{k: _field(d, k, where) for k in ("shape", "runs", "fp32_ms", "quant_ms", "ratio",
                                                        "slower_than_fp32")})

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "runs": self.runs, "fp32_ms": self.fp32_ms, "quant_ms": self.quant_ms,
                "ratio": self.ratio, "slower_than_fp32": self.slower_than_fp32}


ATTEMPT_KEYS = ("label", "settings", "retention", "basis", "passed", "seconds")


@dataclass
class Attempt:
    """One quantization under the guard; ``scores`` holds the rest: metric values (named after the metric,
    ``fp32_<metric>`` for the reference) and what the quantizer reported (``embedding_table``, ``qat``)."""

    label: str
    settings: dict[str, Any]
    retention: float
    basis: str
    passed: bool
    seconds: float
    scores: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "attempts/") -> "Attempt":
        known = {k: _field(d, k, where) for k in ATTEMPT_KEYS}
        return cls(**known, scores={k: v for k, v in d.items() if k not in ATTEMPT_KEYS})

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "settings": self.settings, **self.scores, "retention": self.retention,
                "basis": self.basis, "passed": self.passed, "seconds": self.seconds}


@dataclass
class MethodResult:
    """One method's outcome: its attempts, the kept file (``path``, relative to the report's folder) and its numbers."""

    attempts: list[Attempt]
    chosen: int
    meets_floor: bool
    retention: float
    retention_floor: float
    graph: str
    latency: Latency
    flags: list[str]
    path: str
    variant: str
    precision: str
    size_mb: float
    calibration_rows_yielded: int | None = None
    layer_sensitivity: dict[str, float] | None = None

    REQUIRED = ("chosen", "meets_floor", "retention", "retention_floor", "graph", "flags", "path", "variant",
                "precision", "size_mb")

    @property
    def chosen_attempt(self) -> Attempt:
        """The attempt whose file was kept."""
        return self.attempts[self.chosen]

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "") -> "MethodResult":
        attempts = [Attempt.from_dict(a, f"{where}attempts/{i}/") for i, a in enumerate(_field(d, "attempts", where))]
        return cls(attempts=attempts, latency=Latency.from_dict(_field(d, "latency", where), f"{where}latency/"),
                   **{k: _field(d, k, where) for k in cls.REQUIRED},
                   calibration_rows_yielded=d.get("calibration_rows_yielded"),
                   layer_sensitivity=d.get("layer_sensitivity"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attempts": [a.to_dict() for a in self.attempts], "chosen": self.chosen,
                               "meets_floor": self.meets_floor, "retention": self.retention,
                               "retention_floor": self.retention_floor}
        if self.layer_sensitivity is not None:
            out["layer_sensitivity"] = self.layer_sensitivity
        out.update(graph=self.graph, latency=self.latency.to_dict(), flags=self.flags, path=self.path,
                   variant=self.variant, precision=self.precision, size_mb=self.size_mb)
        if self.calibration_rows_yielded is not None:
            out["calibration_rows_yielded"] = self.calibration_rows_yielded
        return out


@dataclass
class Recommendation:
    """The file to ship: the fastest INT8 variant meeting the floor and not slower than fp32; else fp32 (no path)."""

    variant: str
    path: str | None
    reason: str
    method: str | None = None
    latency_ratio: float | None = None

    @property
    def is_fp32(self) -> bool:
        """No INT8 file was recommended: the fp32 model stays."""
        return self.path is None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recommendation":
        return cls(variant=_field(d, "variant", "recommended/"), path=_field(d, "path", "recommended/"),
                   reason=_field(d, "reason", "recommended/"), method=d.get("method"),
                   latency_ratio=d.get("latency_ratio"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variant": self.variant}
        if self.method is not None:
            out["method"] = self.method
        out["path"] = self.path
        if self.latency_ratio is not None:
            out["latency_ratio"] = self.latency_ratio
        out["reason"] = self.reason
        return out


@dataclass
class VariantFile:
    """A model file the stage declares (name, format, path relative to the report's folder, precision)."""

    name: str
    format: str
    path: str
    precision: str

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "variants/") -> "VariantFile":
        return cls(**{k: _field(d, k, where) for k in ("name", "format", "path", "precision")})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "path": self.path, "precision": self.precision}


@dataclass
class RuntimeScore:
    """One runtime file of the export stage scored on the guard's rows (``compress.quantize.evaluate.score_runtime``):
    the task metric (None without labels), retention against the fp32 ONNX file, fidelity, the guard's floor; a file
    not scored (Core ML on Linux, a runtime not installed) has ``scored`` False and the ``reason``."""

    format: str
    precision: str
    path: str
    scored: bool
    reason: str | None = None
    metric: str | None = None
    value: float | None = None
    fp32_value: float | None = None
    retention: float | None = None
    basis: str | None = None
    fidelity: str | None = None
    fidelity_value: float | None = None
    retention_floor: float | None = None
    meets_floor: bool | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "runtimes/") -> "RuntimeScore":
        base = {k: _field(d, k, where) for k in ("format", "precision", "path", "scored")}
        if not base["scored"]:
            return cls(**base, reason=_field(d, "reason", where))
        metric = _field(d, "metric", where)
        fid = _field(d, "fidelity", where)
        return cls(**base, metric=None if metric is None else metric["name"],
                   value=None if metric is None else metric["value"],
                   fp32_value=None if metric is None else metric["fp32_value"],
                   retention=_field(d, "retention", where), basis=_field(d, "basis", where),
                   fidelity=fid["name"], fidelity_value=fid["value"],
                   retention_floor=_field(d, "retention_floor", where), meets_floor=_field(d, "meets_floor", where))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "precision": self.precision, "path": self.path,
                               "scored": self.scored}
        if not self.scored:
            return {**out, "reason": self.reason}
        metric = None if self.metric is None else {"name": self.metric, "value": self.value,
                                                   "fp32_value": self.fp32_value}
        return {**out, "metric": metric, "retention": self.retention, "basis": self.basis,
                "fidelity": {"name": self.fidelity, "value": self.fidelity_value},
                "retention_floor": self.retention_floor, "meets_floor": self.meets_floor}


@dataclass
class QuantizeReport:
    """The whole report. ``cpu``, ``int8_recipe``, ``graph``, ``eval`` and ``calibration`` stay the schema's
    objects (informational: nothing in edgepress reads them back)."""

    source: str
    task: str
    methods: dict[str, MethodResult]
    recommended: Recommendation
    variants: list[VariantFile]
    fp32_size_mb: float
    seconds: float
    cpu: dict[str, Any]
    int8_recipe: dict[str, Any]
    graph: dict[str, Any]
    eval: dict[str, Any]
    skipped: dict[str, str]
    calibration: dict[str, Any] | None
    runtimes: list[RuntimeScore] = field(default_factory=list)

    PLAIN = ("source", "task", "fp32_size_mb", "seconds", "cpu", "int8_recipe", "graph", "eval", "skipped", "calibration")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QuantizeReport":
        """The typed report of ``d`` (quantize_report.json or a quantize stage.json's metrics)."""
        methods = {m: MethodResult.from_dict(r, f"methods/{m}/") for m, r in _field(d, "methods", "").items()}
        return cls(methods=methods, recommended=Recommendation.from_dict(_field(d, "recommended", "")),
                   variants=[VariantFile.from_dict(v, f"variants/{i}/") for i, v in enumerate(_field(d, "variants", ""))],
                   runtimes=[RuntimeScore.from_dict(r, f"runtimes/{i}/") for i, r in enumerate(d.get("runtimes", []))],
                   **{k: _field(d, k, "") for k in cls.PLAIN})

    @classmethod
    def load(cls, path: Path) -> "QuantizeReport":
        """Read and type a quantize_report.json."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise EdgepressError(f"cannot read quantize report '{path}': {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what quantize_report.json holds)."""
        return {"source": self.source, "task": self.task, "methods": {m: r.to_dict() for m, r in self.methods.items()},
                "cpu": self.cpu, "int8_recipe": self.int8_recipe, "graph": self.graph, "eval": self.eval,
                "skipped": self.skipped, "variants": [v.to_dict() for v in self.variants],
                "calibration": self.calibration, "fp32_size_mb": self.fp32_size_mb,
                "recommended": self.recommended.to_dict(), "seconds": self.seconds,
                "runtimes": [r.to_dict() for r in self.runtimes]}

    @property
    def recommended_result(self) -> MethodResult | None:
        """The recommended method's result; None when fp32 is kept."""
        return None if self.recommended.method is None else self.methods.get(self.recommended.method)

    def method_of_path(self, path: str) -> tuple[str, MethodResult] | None:
        """The method (name, result) whose kept file is ``path`` (relative to the report's folder)."""
        return next(((m, r) for m, r in self.methods.items() if r.path == path), None)

    def int8_passing(self) -> list[MethodResult]:
        """The INT8 results that met the retention floor."""
        return [r for r in self.methods.values() if r.precision == "int8" and r.meets_floor]
