"""The Python API: one import, one verb per stage, each of the same shape — a model reference, an output
folder, the task/data and the stage's config section(s) as keyword dicts in; a typed result out:

    from compress.api import run, finetune, distill, prune, trim_vocab, export, quantize, bench

Every stage verb also takes ``overrides=["section.key=value", ...]`` (the CLI's ``--set``), applied last.

(A module of its own: ``compress.distill``, ``compress.prune`` and ``compress.quantize`` are subpackages, and
importing one rebinds that name on the ``compress`` package, so the verbs cannot live there.) Importing it
stays light: heavy libraries load inside the functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:
    from compress.config import RunConfig
    from compress.quantize.report import QuantizeReport

__all__ = ["run", "finetune", "distill", "prune", "trim_vocab", "export", "quantize", "bench", "derive", "run_branch",
           "StageRun", "RunResult", "BenchResult"]

PathLike = Union[str, Path]


@dataclass
class StageRun:
    """One stage run on its own: its folder, named outputs (absolute paths) and metrics (as in stage.json)."""

    stage: str
    out_dir: Path
    outputs: dict[str, Path]
    metrics: dict[str, Any]

    def __getitem__(self, key: str) -> Path:
        """An output by name, e.g. ``run["model"]``, ``run["onnx"]``, ``run["onnx_int8"]``."""
        if key not in self.outputs:
            raise KeyError(f"{self.stage} wrote no output '{key}'; it wrote: {', '.join(self.outputs)}")
        return self.outputs[key]

    def quantize_report(self) -> "QuantizeReport":
        """The quantize stage's metrics typed (``.methods["dynamic"].retention``, ``.recommended``); the same
        report as ``metrics`` (schema: compress/quantize/report.schema.json)."""
        from compress.core.errors import EdgepressError
        from compress.quantize.report import QuantizeReport

        if self.stage != "quantize":
            raise EdgepressError(f"quantize_report() reads a quantize stage's metrics; this is the {self.stage} stage")
        return QuantizeReport.from_dict(self.metrics)


@dataclass
class RunResult:
    """A pipeline run: its folder, the chosen model's ``final/`` folder, what each stage did."""

    run_dir: Path
    final: Path
    stages: list[Any] = field(default_factory=list)  # compress.run.pipeline.StageOutcome (name, dir, status, metrics)


@dataclass
class BenchResult:
    """A benchmark report (benchmarks/report.schema.json) and, when written, its files."""

    report: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def entry(self, name: str, target: str = "local") -> dict[str, Any]:
        """The report entry of model ``name`` measured on ``target``."""
        for e in self.report["models"]:
            if e["name"] == name and e["target"] == target:
                return e
        raise KeyError(f"no entry '{name}' on {target}; entries: {[e['name'] for e in self.report['models']]}")

    def table(self) -> str:
        """The report as Markdown (what report.md holds)."""
        from benchmarks.report import to_markdown

        return to_markdown(self.report)


def _config(config: "RunConfig | PathLike | None", fields: dict[str, Any], sections: dict[str, Any],
            overrides: list[str] | None = None) -> "RunConfig":
    """A RunConfig: ``config`` (an object, a YAML path, or None for the CLI's defaults), then ``fields``
    (dotted keys, None skipped), whole ``sections`` (dicts merge into the section) and ``overrides``
    (``--set key=value`` strings) on top."""
    from compress.config import RunConfig, load_config

    if isinstance(config, RunConfig):
        data: dict[str, Any] = config.model_dump(mode="json")
    else:
        defaults = {"teacher": {"model": "packaged:minilm-l6"}, "data": {"train": "builtin:pydoc"}}
        data = load_config(config, base=defaults).model_dump(mode="json")
    for key, value in fields.items():
        if value is not None:
            head, _, tail = key.partition(".")
            data[head] = {**data.get(head, {}), tail: value} if tail else value
    for name, section in sections.items():
        data[name] = {**data.get(name, {}), **section} if isinstance(section, dict) else section
    return load_config(None, overrides, base=data)


def _stage(name: str, out: PathLike, upstream: dict[str, PathLike], config: Any, fields: dict[str, Any],
           sections: dict[str, Any], overwrite: bool) -> StageRun:
    from compress.run.pipeline import run_standalone

    overrides = sections.pop("overrides", None)  # the CLI's --set strings, applied last
    cfg = _config(config, fields, sections, overrides)
    rec = run_standalone(cfg, name, Path(out), {k: Path(v) for k, v in upstream.items() if v is not None},
                         overwrite=overwrite)
    return StageRun(name, rec.dir, {k: rec.path(k) for k in rec.outputs}, rec.metrics)


def derive(cfg: "RunConfig", **sections: Any) -> "RunConfig":
    """``cfg`` with ``sections`` merged in (a dict merges into its section, anything else replaces it), validated
    as a loaded config is: what a stage uses to build the config of a branch or of a measurement."""
    return _config(cfg, {}, sections)


def run_branch(cfg: "RunConfig", seed: tuple[list[Any], str], data: Any = None) -> list[Any]:
    """Run (or resume) ``cfg`` as a branch of the running pipeline: its stages see ``seed``'s finished records
    (compress.run.stages.StageRecord) as upstream and chain their hashes from ``seed``'s hash, and read ``data`` (the
    running pipeline's data artifact) when their data section is its; it publishes and packages nothing. Returns its
    compress.run.pipeline.StageOutcome list."""
    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline

    if not isinstance(cfg, RunConfig):
        raise TypeError(f"run_branch needs a validated RunConfig (compress.api.derive), got {type(cfg).__name__}")
    return run_pipeline(cfg, seed=seed, data=data)


def load(config: PathLike, overrides: list[str] | None = None) -> "RunConfig":
    """A pipeline YAML as ``edgepress run`` reads it: validated, ``overrides`` (``--set key=value``) applied last;
    nothing filled in for the user (a missing teacher or data section is an error)."""
    from compress.config import load_config

    return load_config(config, overrides)


def validate(config: PathLike, overrides: list[str] | None = None) -> "RunConfig":
    """:func:`load`, then the stage order checked (each stage's needs provided by an earlier one); nothing runs."""
    from compress.run.stages import check_stage_order

    cfg = load(config, overrides)
    check_stage_order(cfg)
    return cfg


def run(config: "RunConfig | PathLike | None" = None, *, force: set[str] | None = None,
        on_stage: Callable[[str, str], None] | None = None, **sections: Any) -> RunResult:
    """The whole pipeline (resumable), as ``edgepress run``: ``config`` plus section overrides, e.g.
    ``run("configs/default.yaml", distill={"max_steps": 50}, name="try1")``; ``on_stage(name, status)`` hears each
    stage start, finish or be reused."""
    from compress.run.pipeline import run_pipeline

    cfg = _config(config, {}, sections)
    outcomes = run_pipeline(cfg, force=force, on_stage=on_stage)
    return RunResult(cfg.run_dir, cfg.run_dir / "final", list(outcomes))


def package(run_dir: PathLike) -> StageRun:
    """(Re)write ``run_dir/final/`` from a finished run (the package stage again, on the stages before it), as
    ``edgepress package``."""
    from compress.run.pipeline import rerun_stage

    outcome = rerun_stage(Path(run_dir), "package")
    return StageRun("package", outcome.dir, {"final": outcome.dir / "final"}, outcome.metrics)


def finetune(model: str, out: PathLike, *, task: str | None = None, data: str | None = None,
             eval_data: str | None = None, text_column: str | None = None, text_pair_column: str | None = None,
             label_column: str | None = None, config: Any = None, overwrite: bool = False,
             **sections: Any) -> StageRun:
    """Fine-tune ``model``'s task head (section ``finetune``) on ``data`` (``eval_data``: the dev file, the
    columns as in the ``data`` section); the teacher lands in ``run["model"]``."""
    return _stage("finetune", out, {}, config, {"task": task, "teacher.model": model, "data.train": data,
                                                "data.eval": eval_data, "data.text_column": text_column,
                                                "data.text_pair_column": text_pair_column,
                                                "data.label_column": label_column}, sections, overwrite)


def distill(teacher: str, out: PathLike, *, task: str | None = None, data: str | None = None,
            config: Any = None, overwrite: bool = False, **sections: Any) -> StageRun:
    """Distill ``teacher`` into a smaller student (sections ``student``, ``distill``); ``run["model"]``."""
    return _stage("distill", out, {}, config, {"task": task, "teacher.model": teacher, "data.train": data},
                  sections, overwrite)


def prune(model: PathLike, out: PathLike, *, task: str | None = None, data: str | None = None,
          config: Any = None, overwrite: bool = False, **sections: Any) -> StageRun:
    """Remove heads / FFN neurons / layers of a save_pretrained folder (section ``prune``); ``run["model"]``."""
    return _stage("prune", out, {"model": model}, config,
                  {"task": task, "data.train": data}, sections, overwrite)


def trim_vocab(model: PathLike, out: PathLike, *, task: str | None = None, data: str | None = None,
               config: Any = None, overwrite: bool = False, **sections: Any) -> StageRun:
    """Keep the tokens ``data`` uses: embedding rows and tokenizer rewritten together (section ``vocab``);
    ``run["model"]``."""
    return _stage("trim_vocab", out, {"model": model}, config,
                  {"task": task, "data.train": data}, sections, overwrite)


def export(model: PathLike, out: PathLike, *, task: str | None = None, config: Any = None,
           overwrite: bool = False, **sections: Any) -> StageRun:
    """Export a save_pretrained folder, parity-checked against itself (section ``export``); ``run["onnx"]``,
    ``run["tokenizer"]``. ``model`` is not the teacher: the teacher is the one ``config``, ``teacher={"model": ...}``
    or ``--set teacher.model=`` names (none otherwise), read only by ``export.include_teacher``."""
    return _stage("export", out, {"model": model}, config, {"task": task, **_unnamed_teacher(config)}, sections,
                  overwrite)


def _unnamed_teacher(config: Any) -> dict[str, str]:
    """``{"teacher.model": ""}`` (no teacher) when ``config`` names none — None, or a YAML without a teacher
    section — so the CLI's default teacher does not stand in for one a stage that needs none never uses; a
    ``teacher`` section or ``--set teacher.model=`` given beside it still wins (they apply after these fields)."""
    from compress.config import RunConfig, read_yaml

    if isinstance(config, RunConfig):
        return {}
    if config is not None:
        loaded = read_yaml(Path(config))
        if not isinstance(loaded, dict) or "teacher" in loaded:  # not a mapping: load_config says so in one line
            return {}
    return {"teacher.model": ""}


def quantize(onnx: PathLike, out: PathLike, *, task: str | None = None, data: str | None = None,
             tokenizer: PathLike | None = None, student: PathLike | None = None, config: Any = None,
             overwrite: bool = False, **sections: Any) -> StageRun:
    """Quantize an ONNX file under the accuracy guard (section ``quantize``); ``run["onnx_int8"]`` is the pick.

    ``tokenizer`` defaults to a ``tokenizer/`` folder beside the file (what ``export`` writes).
    """
    onnx = Path(onnx)
    if tokenizer is None and (onnx.parent / "tokenizer").is_dir():
        tokenizer = onnx.parent / "tokenizer"
    return _stage("quantize", out, {"onnx": onnx, "tokenizer": tokenizer, "model": student}, config,
                  {"task": task, "data.train": data}, sections, overwrite)


def bench(models: dict[str, PathLike], *, task: str, tokenizer: PathLike | None = None,
          eval_data: Any = None, teacher: str | None = None, out: PathLike | None = None,
          max_length: int = 128, **bench_section: Any) -> BenchResult:
    """Measure model files/folders (name -> path) with the harness; ``teacher`` names the reference entry.

    ``bench_section`` holds ``bench`` fields (``min_runs``, ``warmup``, ``realistic``, ``max_eval_samples``...);
    ``eval_data`` (texts, a ``TextData`` or an ``EvalSet``) turns on quality and retention; ``out`` writes
    report.json/md/csv/png there.
    """
    from benchmarks.api import settings_from_config
    from benchmarks.config import BenchConfig
    from benchmarks.evalset import EvalSet
    from benchmarks.harness import ModelSpec, benchmark

    if eval_data is None:  # realistic lengths are drawn from eval rows: without them, the --seq sweep (as bench run)
        bench_section = {"realistic": False, **bench_section}
    cfg = BenchConfig.model_validate(bench_section)
    specs = [ModelSpec(name, Path(path), None, "int8" if "int8" in str(path).lower() else "fp32",
                       "teacher" if name == teacher else "variant") for name, path in models.items()]
    if eval_data is None or isinstance(eval_data, EvalSet):
        eval_set = eval_data
    elif isinstance(eval_data, (list, tuple)):
        eval_set = EvalSet([str(t) for t in eval_data])
    else:
        eval_set = EvalSet.from_text_data(eval_data)
    if eval_set is not None:
        eval_set = eval_set.head(cfg.max_eval_samples)
    report = benchmark(specs, task, settings_from_config(cfg, max_length, 0),
                       tokenizer_path=None if tokenizer is None else str(tokenizer), eval_set=eval_set)
    files: dict[str, Path] = {}
    if out is not None:
        from benchmarks.report import write_report

        files = write_report(report, Path(out))
    return BenchResult(report, files)
