"""Stage contract and registry.

A stage is a plain function ``run(cfg, inputs, out_dir) -> StageResult`` registered by name.
It reads upstream artifacts through ``inputs`` and writes inside ``out_dir`` (a temporary
directory the pipeline renames into place once the stage returns), plus the work folders its
spec declares (``work_dirs``: caches, Trainer checkpoints, search branches). It returns exactly
the output keys its spec declares (``provides``, and those of ``optional`` it wrote); the
pipeline checks that. What the run folder keeps a copy of (``publish``), what is imported
before the run starts (``preload``) and which stage runs after which (``follows``) are spec
fields too, so the orchestrator knows no stage by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from compress.core.errors import EdgepressError
from compress.run.registry import LOSS_CURVES, STAGES, StageSpec, get_stage, with_followers  # noqa: F401

if TYPE_CHECKING:
    from compress.config import RunConfig
    from compress.data.artifact import RunData


@dataclass
class Variant:
    """A model file a later stage (bench, bundle) should consider: e.g. ``student-onnx-int8``."""

    name: str
    format: str  # pytorch | onnx | torchscript | ptl | ort | executorch | litert | openvino | coreml
    path: str  # relative to the stage directory that produced it
    precision: str = "fp32"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "format": self.format, "path": self.path, "precision": self.precision}


@dataclass
class StageResult:
    """What a stage returns: named outputs (paths relative to its dir), metrics, variants."""

    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    variants: list[Variant] = field(default_factory=list)


@dataclass
class StageRecord:
    """A finished stage as read back from its ``stage.json``."""

    name: str
    dir: Path
    outputs: dict[str, str]
    metrics: dict[str, Any]
    variants: list[Variant]

    def path(self, key: str) -> Path:
        return self.dir / self.outputs[key]


@dataclass
class StageInputs:
    """Finished upstream stages, oldest first, plus the run directory; a stage run on its own gets the files it
    was given instead (``given``: output key -> absolute path, e.g. ``model``, ``onnx``, ``tokenizer``)."""

    run_dir: Path
    upstream: list[StageRecord] = field(default_factory=list)
    given: dict[str, Path] = field(default_factory=dict)
    # the run's data artifact (compress.data.artifact.RunData), or what makes it at first use (a stage on its own)
    data_source: "RunData | Callable[[], RunData] | None" = field(default=None, repr=False)

    @property
    def data(self) -> "RunData":
        """The run's data artifact: every split's rows, as the split at the start of the run made them."""
        if callable(self.data_source):
            self.data_source = self.data_source()
        if self.data_source is None:
            raise EdgepressError(f"no data artifact under '{self.run_dir}': a stage that reads rows must declare the "
                                 "'data' section (compress/run/registry.py) so the pipeline splits the data first")
        return self.data_source

    def latest(self, key: str) -> Path | None:
        """Path of the most recent upstream output named ``key`` (e.g. ``model``, ``onnx``), else the given one."""
        for rec in reversed(self.upstream):
            if key in rec.outputs:
                return rec.path(key)
        return self.given.get(key)

    def require(self, key: str, stage: str) -> Path:
        found = self.latest(key)
        if found is None:
            names = [r.name for r in self.upstream] or ["none"]
            raise EdgepressError(
                f"stage '{stage}' needs an upstream '{key}' output, but the stages before it ({', '.join(names)}) "
                f"produced none; put a stage that writes '{key}' earlier in `stages:`"
            )
        return found

    def variants(self) -> list[tuple[Variant, Path]]:
        """Every variant declared upstream (a given model or ONNX file counts as one, named ``input``), with its
        absolute path."""
        given = [(Variant("input", "pytorch" if key == "model" else "onnx", str(path)), path)
                 for key, path in self.given.items() if key in ("model", "onnx")]
        return given + [(v, rec.dir / v.path) for rec in self.upstream for v in rec.variants]


StageFn = Callable[["RunConfig", StageInputs, Path], StageResult]

STAGE_FILE = "stage.json"


def read_record(stage_dir: Path) -> tuple[StageRecord, dict] | None:
    """Read a finished stage; None if its stage.json is absent or unreadable."""
    import json

    path = Path(stage_dir) / STAGE_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    rec = StageRecord(meta["stage"], Path(stage_dir), meta.get("outputs", {}), meta.get("metrics", {}),
                      [Variant(**v) for v in meta.get("variants", [])])
    return rec, meta



def nncf_preload(cfg: "RunConfig") -> tuple[str, ...]:
    """NNCF, when an INT8 method uses it: imported before the run's log capture so its import-time logging setup
    does not land in the run's log handlers."""
    return ("nncf",) if {"nncf", "qat"} & set(cfg.quantize.methods) else ()


def export_loads_teacher(cfg: "RunConfig") -> bool:
    """Export reads the teacher's folder only to export it beside the model (export.include_teacher)."""
    return cfg.export.include_teacher


def qat_loads_teacher(cfg: "RunConfig") -> bool:
    """Quantize reads the teacher's folder only for QAT (distillation from the teacher while fine-tuning INT8)."""
    return "qat" in cfg.quantize.methods


def search_distils(cfg: "RunConfig") -> tuple[str, ...]:
    """The ``needs`` search satisfies itself: with ``search.depths`` it distils each depth, needing no model."""
    return ("model",) if cfg.search.depths else ()


CHECKPOINTS_DIR = ".checkpoints"  # <run>/.checkpoints/<stage>-<hash>/: a training stage's Trainer checkpoints


def distill_cache_root(cfg: "RunConfig", run_dir: Path) -> Path:
    """Where distillation keeps its disk caches: ``distill.cache_dir``, else ``<run folder>/.cache``."""
    return Path(cfg.distill.cache_dir).expanduser().resolve() if cfg.distill.cache_dir else Path(run_dir) / ".cache"


def data_cache_dir(cfg: "RunConfig", run_dir: Path) -> Path:
    """Where the run's data artifact caches tokenized rows: the distillation cache root's ``data/``."""
    return distill_cache_root(cfg, run_dir) / "data"


def checkpoint_dirs(cfg: "RunConfig", run_dir: Path) -> list[Path]:
    """A training stage's Trainer checkpoints: ``<run>/.checkpoints/`` (removed once the stage finished)."""
    return [Path(run_dir) / CHECKPOINTS_DIR]


def run_cache_dirs(cfg: "RunConfig", run_dir: Path) -> list[Path]:
    """The run's disk cache ``<run>/.cache`` (tokenized data, teacher outputs), shared by stages and reruns."""
    return [Path(run_dir) / ".cache"]


def distill_work_dirs(cfg: "RunConfig", run_dir: Path) -> list[Path]:
    """Distillation: its checkpoints and its cache root (``distill.cache_dir``, else ``<run>/.cache``)."""
    return [*checkpoint_dirs(cfg, run_dir), data_cache_dir(cfg, run_dir).parent]


def search_work_dirs(cfg: "RunConfig", run_dir: Path) -> list[Path]:
    """Search: its branch runs under ``<run>/search/`` and what their stages write (caches, checkpoints)."""
    return [Path(run_dir) / "search", *distill_work_dirs(cfg, run_dir)]


class StageContractError(EdgepressError):
    """A stage read a config field it did not declare: its hash would not change when that field does."""


class Undeclared:
    """Stands in a stage's config view for a field outside the stage's declared sections: any use raises."""

    def __init__(self, stage: str, field: str, declared: tuple[str, ...]):
        object.__setattr__(self, "_where", (stage, field, declared))

    def _refuse(self, *_: Any, **__: Any) -> Any:
        stage, field, declared = object.__getattribute__(self, "_where")
        raise StageContractError(f"stage '{stage}' read config '{field}', which is not among its declared sections "
                                 f"({', '.join(declared)}) in compress/run/stages.py: add '{field}' to its sections so "
                                 "the stage reruns when it changes")

    __getattr__ = __setattr__ = __getitem__ = __iter__ = __len__ = __bool__ = __int__ = __float__ = __index__ = _refuse
    __str__ = __format__ = __eq__ = __lt__ = __hash__ = __contains__ = __call__ = _refuse

    def __repr__(self) -> str:
        stage, field, _ = object.__getattribute__(self, "_where")
        return f"<config '{field}' undeclared by stage '{stage}'>"


META_FIELDS = ("name", "output_dir", "stages", "keep_checkpoints")  # run identity: no stage output depends on them


def stage_view(cfg: "RunConfig", spec: "StageSpec") -> "RunConfig":
    """What ``spec``'s stage receives: ``cfg`` with every undeclared section replaced by :class:`Undeclared` and
    every ``unused`` key at its default, so what the stage reads is exactly what its hash covers."""
    from compress.config import RunConfig

    update: dict[str, Any] = {name: Undeclared(spec.name, name, spec.sections) for name in RunConfig.model_fields
                              if name not in spec.sections and name not in META_FIELDS}
    for dotted in spec.unused:
        section, key = dotted.split(".", 1)
        field = type(getattr(cfg, section)).model_fields[key]
        current = update.get(section, getattr(cfg, section))
        update[section] = current.model_copy(update={key: field.get_default(call_default_factory=True)})
    return cfg.model_copy(update=update)


PROVIDERS_HINT = {"model": "distill (or prune)", "onnx": "export", "teacher": "finetune"}


def check_stage_order(cfg: "RunConfig", stages: list[str] | None = None) -> None:
    """Refuse, before any work, a stage list where a stage needs an output no earlier stage provides."""
    from compress.core.errors import ConfigError

    have: set[str] = set()
    for name in stages if stages is not None else cfg.stages:
        spec = get_stage(name)
        needs = set(spec.needs) - set(spec.call("needs_unless", cfg) or ())
        missing = sorted(needs - have)
        if missing:
            who = ", ".join(PROVIDERS_HINT.get(k, k) for k in missing)
            from compress.core.errors import ConfigError

            raise ConfigError(f"stages {cfg.stages}: '{name}' needs {', '.join(repr(k) for k in missing)} from an "
                                 f"earlier stage; put {who} before it in `stages:`")
        have |= set(spec.provides) | set(spec.optional)


def teacher_source(cfg: "RunConfig", inputs: StageInputs) -> str:
    """The teacher to use: a fine-tuned one from an upstream ``finetune`` stage, else the config's."""
    tuned = inputs.latest("teacher")
    return str(tuned) if tuned is not None else cfg.teacher.model


def own_model(inputs: StageInputs) -> Path | None:
    """The model a stage works on: the latest upstream ``model``, else the folder of an upstream ONNX file when it
    holds the model's config.json (an export or optimum folder given to ``edgepress quantize``)."""
    from compress.model.checks import model_config_folder

    model = inputs.latest("model")
    if model is not None:
        return model
    onnx = inputs.latest("onnx")
    return model_config_folder(onnx) if onnx is not None else None


def teacher_labels(cfg: "RunConfig", inputs: StageInputs) -> dict:
    """``load_splits`` keywords for classification in a stage run on its own: class names in the data map to the ids
    of the model it works on (else the configured teacher's), and class ids are checked against that model's head."""
    from compress.tasks import task_spec

    if task_spec(cfg.task).label_kind != "classes":
        return {}
    from compress.model.interface import class_space, interface_of

    source = inputs.latest("teacher") or own_model(inputs) or cfg.teacher.model
    return class_space(interface_of(str(source), cfg.task))


def head_labels(cfg: "RunConfig", tuned: Path | None = None) -> dict[str, Any]:
    """``load_splits`` keywords that check the data's class ids against the head the run will use (classification):
    the one finetune makes from the train file (teacher.num_labels when set), else that of ``tuned`` (a teacher
    fine-tuned upstream: a search branch's) or of the configured teacher, whose class names the data's map to."""
    from compress.tasks import task_spec

    if task_spec(cfg.task).label_kind != "classes":
        return {}
    if "finetune" in cfg.stages:
        n = cfg.teacher.num_labels
        return {"num_labels": n, "head": f"teacher.num_labels={n}"} if n else {"fine_tuned": True}
    from compress.model.interface import interface_of, label_mapping

    source = str(tuned) if tuned is not None else cfg.teacher.model
    iface = interface_of(source, cfg.task)
    n = len(iface.id2label or {})
    return {**label_mapping(iface), **({"num_labels": n, "head": f"teacher '{source}'"} if n else {})}


def tag_names(cfg: "RunConfig", inputs: StageInputs) -> list[str] | None:
    """Token classification: the tag of each class id (id2label in id order) of the latest model, else the teacher's;
    the measuring layer maps logits to tags with it. None for other tasks."""
    from compress.tasks import task_spec

    if task_spec(cfg.task).gold != "tags":
        return None
    from compress.model.interface import interface_of

    model = own_model(inputs)
    iface = interface_of(str(model) if model is not None else teacher_source(cfg, inputs), cfg.task)
    if not iface.id2label:
        raise EdgepressError(f"the token-classification model '{iface.source}' names no tags (config.json id2label)")
    return [iface.id2label[i] for i in sorted(iface.id2label)]
