"""The one validated config schema of the pipeline, loaded from YAML with --set overrides.

Every section lives beside the method it configures; this module assembles them, loads YAML,
applies ``--set a.b=value`` overrides and turns validation failures into messages that name
the key path and the nearest valid key.
"""

from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator, model_validator

from benchmarks.config import BenchConfig
from compress.core.config_base import Section, optimizer_steps
from compress.distill.config import DistillConfig, StudentConfig
from compress.core.errors import ConfigError, closest_name
from compress.prune.config import PruneConfig
from compress.quantize.config import QuantizeConfig
from compress.search.config import SearchConfig
from compress.vocab.config import VocabConfig
from export.config import ExportConfig

# The shipped tasks (compress/tasks/); ``RunConfig.task`` takes any name in the registry when the config is read,
# so a task registered later (one file in compress/tasks/, or a test's) is accepted too.
Task = Literal["embedding", "classification", "regression", "mlm", "token-classification", "question-answering"]


class TeacherConfig(Section):
    """The big model to compress."""

    model: str = Field(..., description="local HF folder, hub name, or packaged:minilm-l6")
    max_length: int = Field(128, ge=8, le=8192, description="tokenizer truncation length")
    num_labels: int | None = Field(None, ge=1, description="classification labels (None: from the data)")


class TextSource(Section):
    """Extra unlabelled text for distillation (embedding/mlm modes): a source and its text column."""

    source: str = Field(..., description="file path, hub:NAME, or builtin:pydoc")
    text_column: str = "sentence"
    limit: int | None = Field(None, ge=1, description="first N rows only")
    header: bool = Field(True, description="csv/tsv: the first row names the columns (false: columns are '0', '1', ...)")

    @field_validator("text_column", mode="before")
    @classmethod
    def _position(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class DataConfig(Section):
    """Where text (and labels) come from; see README 'Data'."""

    train: str = Field(..., description="file (.tsv/.csv/.jsonl/.json/.parquet/.txt), hub:NAME[/CONFIG][@SPLIT], "
                                        "or builtin:pydoc")
    eval: str | None = Field(None, description="held-out split for metrics (None: split off eval_fraction of train)")
    test: str | None = Field(None, description="final report split (None: use eval)")
    text_column: str = "sentence"
    text_pair_column: str | None = None
    label_column: str | None = None
    header: bool = Field(True, description="csv/tsv files start with a header row; false: columns are addressed by "
                                           "position, text_column: '0', label_column: '1'")
    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    doc_stride: int | None = Field(None, ge=1, description="question-answering: tokens shared by consecutive windows "
                                                          "of a long context (run_qa's --doc_stride); None: a third of "
                                                          "teacher.max_length (run_qa: 128 of 384)")
    max_answer_length: int = Field(30, ge=1, description="question-answering: longest answer span, in tokens")
    unlabeled: list[TextSource] = Field(default_factory=list,
                                        description="more text for distillation (labels ignored): embedding/mlm sentences, or "
                                                    "classification rows supervised by the teacher's soft labels only")

    @field_validator("text_column", "text_pair_column", "label_column", mode="before")
    @classmethod
    def _position(cls, v: Any) -> Any:
        """``text_column: 0`` (YAML int) names the first column of a headerless file, like ``'0'``."""
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class FinetuneConfig(Section):
    """Fine-tuning the teacher's task head (sequence classification / regression)."""

    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: use epochs)")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)

    _steps = field_validator("max_steps")(classmethod(optimizer_steps))


class RunConfig(Section):
    """A whole pipeline run: runs/<name>/NN-stage/ for each name in `stages`."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    output_dir: str = "runs"
    seed: int = Field(42, ge=0, lt=2**32, description="random seed (NumPy accepts 0 <= seed < 2**32)")
    task: str = Field("embedding", description="a task of the registry (compress/tasks/): " + " | ".join(typing.get_args(Task)))
    stages: list[str] = Field(default_factory=lambda: ["distill", "export", "quantize", "bench"])
    teacher: TeacherConfig
    data: DataConfig
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    vocab: VocabConfig = Field(default_factory=VocabConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    keep_checkpoints: bool = Field(False, description="keep runs/<name>/.checkpoints/<stage> after the stage finished "
                                                      "(CLI: run --keep-checkpoints); not part of any stage's hash")

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, stages: list[str]) -> list[str]:
        from compress.core.errors import EdgepressError
        from compress.run.registry import get_stage

        for s in stages:
            try:
                get_stage(s)
            except EdgepressError as exc:  # pydantic reports ValueErrors with the key path
                raise ValueError(str(exc)) from None
        if len(set(stages)) != len(stages):
            raise ValueError(f"a stage is listed twice in {stages}")
        if not stages:
            raise ValueError("no stage listed: give at least one, e.g. stages: [distill, export, quantize, bench]")
        return stages

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        from compress.core.errors import EdgepressError
        from compress.tasks import task_spec

        try:
            task_spec(task)
        except EdgepressError as exc:  # pydantic reports ValueErrors with the key path
            raise ValueError(str(exc)) from None
        return task

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        """Checks across sections, and defaults derived from other fields (data.doc_stride from teacher.max_length)."""
        if "quantize" in self.stages and not self.quantize.methods:
            raise ValueError("quantize.methods is empty but the quantize stage is listed: give at least one method, "
                             "e.g. [dynamic], or remove quantize from stages")
        from compress.tasks import TASKS, task_spec

        spec = task_spec(self.task)
        distills = {"distill", "search"} & set(self.stages)
        on_text = " and ".join(", ".join(n for n, s in TASKS.items() if s.unlabeled_text).rsplit(", ", 1))
        if distills and spec.scores and self.data.unlabeled:
            raise ValueError(f"data.unlabeled is used by {on_text} distillation; {self.task} "
                             "needs a score for every row: remove data.unlabeled")
        rec = self.prune.recovery
        if {"prune", "search"} & set(self.stages) and rec.enabled and rec.unlabeled and not spec.unlabeled_text:
            raise ValueError(f"prune.recovery.unlabeled is for {on_text} (the tasks that "
                             f"distill on unlabelled text), not {self.task}: set it to false")
        limit = name_max(self.run_dir)  # every folder name on the run's path must fit the file system
        for field, value in (("output_dir", self.output_dir), ("name", self.name)):
            for part in Path(value).parts:
                if len(part.encode()) > limit:
                    raise ValueError(f"{field} '{part[:24]}...' is {len(part.encode())} bytes; a folder name may have "
                                     f"at most {limit} bytes on this file system: choose a shorter {field}")
        length = self.teacher.max_length
        if self.data.doc_stride is None:
            self.data.doc_stride = max(1, length // 3)
        elif spec.outputs == "answers" and self.data.doc_stride >= length:  # question-answering's context windows
            raise ValueError(f"data.doc_stride={self.data.doc_stride} must be below teacher.max_length={length} (a "
                             "window shares that many tokens with the next one); leave it unset for a third of "
                             "teacher.max_length")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def section_hash(self, sections: tuple[str, ...], unused: tuple[str, ...] = ()) -> str:
        """Stable hash of the named sections, so a stage reruns only when its inputs change.

        ``unused`` dotted keys (e.g. ``data.unlabeled``) are hashed at their default value: a stage that
        does not read them is not redone when they change.
        """
        data = self.model_dump(mode="json", include=set(sections))  # a stage view holds only these
        for dotted in unused:
            section, key = dotted.split(".", 1)
            data[section] = {**data[section], key: _default_json(section, key)}
        picked = {k: data[k] for k in sections}
        return hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest()[:16]


def name_max(path: Path) -> int:
    """The longest folder name (bytes) the file system holding ``path`` (or its nearest existing parent) allows."""
    import os

    for folder in [path, *path.absolute().parents]:
        try:
            if folder.is_dir():
                return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (OSError, ValueError):  # a name too long to look up is refused by the caller
            continue
    return 255


def _default_json(section: str, key: str) -> Any:
    """The default value of ``section.key`` as ``model_dump(mode="json")`` writes it."""
    field = RunConfig.model_fields[section].annotation.model_fields[key]  # type: ignore[union-attr]
    return TypeAdapter(field.annotation).dump_python(field.get_default(call_default_factory=True), mode="json")


# ---------------------------------------------------------------- loading and overrides


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line error as one line: the problem and where (line:column)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a key given twice in one mapping (plain PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if first is not None:
                where = f"line {line}" if first == line else f"lines {first} and {line}"
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice ({where}); keep one",
                                                        key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a folder, a file that is not UTF-8, bad YAML or a key given twice in one
    mapping is a one-line ConfigError naming the file."""
    if path.is_dir():
        raise ConfigError(f"config file '{path}' is a folder; give a YAML file, e.g. configs/default.yaml")
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist; see configs/ for examples")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"config file '{path}' is not UTF-8 text (line {line}, byte offset {exc.start}); re-save it "
                          "as UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_yaml_problem(exc)}") from None


def parse_override(expr: str) -> tuple[list[str], Any]:
    """``distill.epochs=2`` -> (['distill', 'epochs'], 2); the value is parsed as YAML."""
    if "=" not in expr:
        raise ConfigError(f"--set '{expr}': expected KEY.PATH=VALUE, e.g. --set distill.epochs=2")
    key, raw = expr.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set '{expr}': empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set '{expr}': value is not valid YAML ({_yaml_problem(exc)})") from None
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted key in a nested dict (creating sections as needed)."""
    for expr in overrides:
        path, value = parse_override(expr)
        node: Any = data
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):  # data.unlabeled.0.limit=...: an index into a list
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set '{expr}': '{part}' is not an index of the {len(node)}-item list")
                part = int(part)
            elif not last and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            if last:
                node[part] = value
            else:
                node = node[part]
    return data


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The pydantic model classes an annotation holds: ``X``, ``X | None``, ``list[X]``, ``list[float | X]``..."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for arg in typing.get_args(ann) for m in _models_in(arg)]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (for nearest-key hints).

    List indexes (``data.unlabeled.0``) and pydantic's union-member tags (``prune_ratios.1.PrunePoint``) are
    steps inside one field, not fields."""
    model: type[BaseModel] | None = RunConfig
    choices: list[type[BaseModel]] = []
    for part in loc[:-1]:
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            continue
        named = next((c for c in choices if c.__name__ == part), None)
        if named is not None:  # the union member pydantic tried
            model, choices = named, []
            continue
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        choices = _models_in(field.annotation)
        model = choices[0] if choices else None
    return model


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: key path, what is wrong, nearest valid key for typos."""
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            owner = _model_at(loc)
            valid = list(owner.model_fields) if owner else []
            close = closest_name(loc[-1], valid, cutoff=0.5)
            hint = f"; did you mean '{'.'.join(str(p) for p in loc[:-1] + (close,))}'?" if close else ""
            lines.append(f"  - unknown key '{path}'{hint} (valid here: {', '.join(valid)})")
        elif err["type"] == "missing":
            lines.append(f"  - '{path}' is required")
        else:
            got = err.get("input")
            shown = isinstance(got, dict) or got is None or "(got " in err["msg"]  # a validator may name it itself
            got_s = "" if shown else f" (got {got!r})"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  - {msg}" if not loc else f"  - '{path}': {msg}{got_s}")
    return "\n".join(lines)


def load_config(path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None) -> RunConfig:
    """Read YAML (or start from ``base``), apply overrides, validate into a RunConfig."""
    data: dict[str, Any] = dict(base or {})
    source = "(built from options)"
    if path is not None:
        p = Path(path)
        loaded = read_yaml(p) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file '{p}' must hold a mapping of sections, got {type(loaded).__name__}")
        data.update(loaded)
        source = f"'{p}'"
    apply_overrides(data, overrides or [])
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def dump_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config as YAML (saved next to every run)."""
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
