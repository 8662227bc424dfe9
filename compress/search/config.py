"""Config of the ``search`` stage: the target to meet and the candidate grid to try."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.core.config_base import Section
from compress.model.formats import FORMAT_SPECS, SEARCH_RUNTIMES
from compress.quantize.config import Method

# runtime -> the export format it runs (the search writes that format in every branch and times it in this runtime):
# the registry's formats with a search_rank, read at each use
RUNTIME_FORMATS = SEARCH_RUNTIMES


def untimed_refusal(runtime: str) -> str | None:
    """Why the search cannot take ``runtime`` when the registry says no runner here times its format (Core ML)."""
    spec = next((s for s in FORMAT_SPECS.values() if s.runtime == runtime and s.untimed), None)
    if spec is None:
        return None
    return f"{spec.title} cannot be timed here ({spec.untimed_why}); ship it with export.formats: [{spec.name}]"


class SearchTargets(Section):
    """What the chosen model must meet, and where it is measured."""

    retention_floor: float = Field(0.97, gt=0, le=1,
                                   description="candidate metric / teacher metric must reach this, in (0, 1]")
    latency_budget_ms: float | None = Field(
        None, gt=0, description="instead of 'fastest above the floor': the most accurate candidate whose p50 fits")
    max_size_mb: float | None = Field(None, gt=0, description="candidates whose file is larger are not chosen")
    device: str = Field("cpu", description="cpu | cuda (this machine) or ssh://user@host[:port] | adb://serial")
    batch: int = Field(1, ge=1, description="batch size the latency is measured at")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("cpu", "cuda") and not value.startswith(("ssh://", "adb://")):
            raise ValueError(f"device '{value}' must be cpu, cuda, ssh://user@host[:port] or adb://serial")
        return value

    @property
    def remote(self) -> bool:
        return self.device.startswith(("ssh://", "adb://"))


class PrunePoint(Section):
    """One pruning amount of the grid: the share of attention heads and of FFN neurons removed.

    Heads and FFN neurons need not go together: on the distilled STS-B student, removing 20 % of the heads and
    70 % of the FFN neurons (52 % of the encoder's MACs) kept more dev Spearman than 40 % of each (41 %).
    """

    heads: float = Field(ge=0, lt=1, description="fraction of attention heads removed")
    ffn: float = Field(ge=0, lt=1, description="fraction of FFN intermediate neurons removed")

    @property
    def name(self) -> str:
        """``p30`` when both shares are 30 %, ``h20-f70`` otherwise: the branch's name part."""
        h, f = round(self.heads * 100), round(self.ffn * 100)
        return f"p{f:02d}" if h == f else f"h{h:02d}-f{f:02d}"

    @property
    def removes_anything(self) -> bool:
        return self.heads > 0 or self.ffn > 0

    @classmethod
    def of(cls, value: "float | PrunePoint") -> "PrunePoint":
        """A grid entry as a point: a plain ratio removes that share of heads and of FFN neurons."""
        return value if isinstance(value, PrunePoint) else cls(heads=value, ffn=value)


class SearchConfig(Section):
    """Candidates = depths x prune_ratios x vocab_sizes x (fp32 + each quantize method); each branch is a small sub-run."""

    targets: SearchTargets = Field(default_factory=SearchTargets)
    depths: list[int] = Field(default_factory=list,
                              description="student depths (layers); [] = only the upstream student's depth; "
                                          "other depths are distilled with the distill section's settings")
    prune_ratios: list[float | PrunePoint] = Field(
        default_factory=lambda: [0.0, 0.3, 0.5],
        description="fraction of attention heads and FFN neurons removed, or {heads: h, ffn: f} to remove different "
                    "shares of each (prune section's importance and recovery apply)")
    vocab_sizes: list[int | None] = Field(default_factory=lambda: [None],
                                          description="vocabulary sizes tried on every (depth, ratio) branch: trim_vocab "
                                                      "with vocab.max_size after pruning (the vocab section's other "
                                                      "settings apply); null = the upstream vocabulary, untrimmed")
    quantize: list[Method] = Field(default_factory=lambda: ["dynamic"],
                                   description="quantize methods tried on every branch (fp32 is always a candidate)")
    optimize_graph: bool = Field(True, description="fuse BERT ops (ONNX Runtime) in candidates before quantizing")
    max_eval_samples: int = Field(5000, ge=2, description="rows of each split every candidate is scored on")
    tie_margin: float = Field(
        0.05, ge=0, lt=1, description="candidates meeting the targets whose p50 is within this fraction of the "
                                     "fastest one's count as equally fast; the most accurate of them (on the "
                                     "select_on split) wins, then the smaller file. 0 = strictly the fastest")
    runtimes: list[str] = Field(
        default_factory=lambda: ["onnxruntime"],
        description="runtimes every candidate is timed in on the target: onnxruntime, openvino, litert, executorch "
                    "(each branch also writes that runtime's files, fp32 and its quantized / fp16 siblings); the "
                    "fastest file meeting the targets wins whatever its runtime, and final/ ships it")
    select_on: Literal["eval", "test"] = Field(
        "eval", description="split whose retention picks the winner; eval keeps the test split out of the choice "
                            "(test retention is reported beside it)")

    @field_validator("depths")
    @classmethod
    def _depths(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values) or len(set(values)) != len(values):
            raise ValueError(f"depths must be distinct layer counts >= 1 (got {values})")
        return values

    @field_validator("prune_ratios")
    @classmethod
    def _ratios(cls, values: list[float | PrunePoint]) -> list[float | PrunePoint]:
        if not values:
            raise ValueError("give at least one prune ratio (0.0 = no pruning)")
        plain = [v for v in values if not isinstance(v, PrunePoint)]
        if any(not 0 <= v < 1 for v in plain) or len({PrunePoint.of(v).name for v in values}) != len(values):
            shown = [v.model_dump() if isinstance(v, PrunePoint) else v for v in values]
            raise ValueError(f"prune ratios must be fractions in [0, 1) that differ by at least 0.01 (got {shown}): "
                             "each names a search branch by its percentages")
        return values

    def prune_points(self) -> list[PrunePoint]:
        """``prune_ratios`` as (heads, FFN) points."""
        return [PrunePoint.of(v) for v in self.prune_ratios]

    @field_validator("vocab_sizes")
    @classmethod
    def _vocab_sizes(cls, values: list[int | None]) -> list[int | None]:
        if not values:
            raise ValueError("give at least one vocabulary size (null = untrimmed)")
        if any(v is not None and v < 8 for v in values) or len(set(values)) != len(values):
            raise ValueError("vocab_sizes must be distinct token counts >= 8 or null (null: untrimmed)")
        return values

    @field_validator("runtimes")
    @classmethod
    def _runtimes(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError(f"give at least one runtime ({', '.join(RUNTIME_FORMATS)})")
        for v in values:
            refused = untimed_refusal(v)
            if refused:
                raise ValueError(refused)
            if v not in RUNTIME_FORMATS:
                from compress.core.errors import closest_name

                close = closest_name(v, RUNTIME_FORMATS, cutoff=0.5)
                hint = f" (did you mean '{close}'?)" if close else ""
                raise ValueError(f"unknown runtime '{v}'{hint}; choose from {', '.join(RUNTIME_FORMATS)}")
        if len(set(values)) != len(values):
            raise ValueError(f"a runtime is listed twice in {values}")
        return values

    def runtime_formats(self) -> list[str]:
        """The export formats of ``runtimes`` other than ONNX Runtime's (which every branch writes anyway)."""
        return [RUNTIME_FORMATS[r] for r in self.runtimes if r != "onnxruntime"]

    @model_validator(mode="after")
    def _no_duplicate_methods(self) -> "SearchConfig":
        if len(set(self.quantize)) != len(self.quantize):
            raise ValueError(f"a quantize method is listed twice in {self.quantize}")
        return self
