"""The `edgepress` command line: a thin layer over compress.run.pipeline and the stage functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from compress.cli.help import use_edgepress_help
from compress.core.console import percent
from compress.core.errors import ConfigError, EdgepressError, RunInterrupted, Terminated

console = Console(stderr=True)
app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Compress BERT-family models (distill, prune, quantize, export) and prove it with benchmarks.\n\n"
         "Start with `edgepress run configs/default.yaml`. Every option maps to a config field; "
         "override any field with --set SECTION.FIELD=VALUE.",
)

def _version(value: bool) -> None:
    if value:
        from compress import __version__

        typer.echo(f"edgepress {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print each step's log lines on the console."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors and the final table."),
) -> None:
    """Options that apply to every command (put them before the command name)."""
    from compress.core.console import set_verbosity

    if verbose and quiet:
        raise typer.BadParameter("choose one of --verbose and --quiet")
    set_verbosity("verbose" if verbose else "quiet" if quiet else "normal")


SET_HELP = "Override a config field, e.g. --set distill.epochs=2 (repeatable; value parsed as YAML)."
DEBUG_HELP = "Show full tracebacks on errors."
KEEP_HELP = ("Keep a stage's Trainer checkpoints (runs/<name>/.checkpoints/) after it finished "
             "(config: keep_checkpoints: true); by default they are removed.")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(title: str, columns: tuple[str, ...]) -> Table:
    """A result table whose cells wrap (long words fold) instead of being cut with an ellipsis; the first column
    (stage or model names) never breaks."""
    table = Table(title=escape(title))
    for i, col in enumerate(columns):
        table.add_column(col, overflow="fold", no_wrap=i == 0)
    return table


STAGE_KEYS = ("student_eval", "teacher_eval", "params_after", "max_abs_diff", "max_rel_diff", "retention", "size_mb",
              "candidates", "meets_targets", "chosen", "precision", "bundle_mb")


def _stage_headline(name: str, metrics: dict) -> str:
    """The numbers a person looks for in one stage's row: quantize's pick (retention, size), bench's best
    speed-up over the teacher, else the stage's key metrics (retention as a percentage)."""
    if name == "quantize" and isinstance(metrics.get("methods"), dict):
        try:
            return _quantize_headline(metrics)
        except EdgepressError:  # a stage.json of an older edgepress: its key metrics below
            pass
    if name == "bench" and any(isinstance(v, dict) and "p50_ms" in v for v in metrics.values()):
        return _bench_headline(metrics)
    shown = [f"{k}={percent(metrics[k]) if k == 'retention' else _fmt(metrics[k])}" for k in STAGE_KEYS
             if k in metrics]
    if isinstance(metrics.get("winner"), dict):
        shown.append(f"winner={metrics['winner']['name']}")
    return ", ".join(shown)


def _quantize_headline(metrics: dict) -> str:
    """The recommended INT8 file's retention (of the fp32 model's metric, the guard's measure) and size, or why
    fp32 was kept."""
    from compress.quantize.report import QuantizeReport

    report = QuantizeReport.from_dict(metrics)
    fp32, chosen = report.fp32_size_mb, report.recommended_result
    if chosen is not None:
        size = f", {chosen.size_mb:.3g} MiB" + (f" (fp32 {fp32:.3g} MiB)" if fp32 else "")
        return f"{chosen.variant}: retention {percent(chosen.retention)} of fp32{size}"
    tried = ", ".join(f"{m} {percent(r.retention)}" for m, r in report.methods.items())
    return f"kept fp32: {report.recommended.reason}" + (f" (retention of fp32: {tried})" if tried else "")


def _bench_headline(metrics: dict) -> str:
    """The fastest measured model's p50 speed-up over the teacher on this machine, with its retention."""
    entries = {k: v for k, v in metrics.items() if isinstance(v, dict) and "@" not in k}
    teacher = next((v for v in entries.values() if v.get("role") == "teacher"), entries.get("teacher"))
    timed = {k: v for k, v in entries.items() if v is not teacher and v.get("role") != "baseline"
             and v.get("status") == "ok" and v.get("p50_ms")}
    if teacher is None or not teacher.get("p50_ms") or not timed:
        return f"{len(timed)} models measured"
    name, best = min(timed.items(), key=lambda kv: kv[1]["p50_ms"])
    return (f"best speed-up {teacher['p50_ms'] / best['p50_ms']:.2f}x vs the teacher: {name} "
            f"(p50 {best['p50_ms']:.2f} ms vs {teacher['p50_ms']:.2f} ms, retention {percent(best.get('retention'))})")


def _print_outcomes(outcomes) -> None:
    table = _table("edgepress run", ("stage", "status", "wall s", "key metrics"))
    for o in outcomes:
        table.add_row(o.name, o.status, f"{o.wall_s:.1f}", escape(_stage_headline(o.name, o.metrics)))
    console.print(table)


def _print_report(run_dir: Path) -> None:
    path = run_dir / "report.json"
    if not path.is_file():
        return
    report = json.loads(path.read_text())
    rows = report.get("models") or []
    if not rows:
        return
    about = [f"teacher: {report['teacher_model']}"] if report.get("teacher_model") else []
    about += [f"metric: {(report.get('data') or {})['metric']}"] if (report.get("data") or {}).get("metric") else []
    # six narrow columns fit 80; p90 and the rest are in report.md
    table = _table(f"report: {path}" + (f" ({'; '.join(about)})" if about else ""),
                   ("variant", "format", "size MB", "metric", "retention", "p50 ms"))
    for r in rows:
        q = r.get("quality") or {}
        lat = r.get("latency_ms") or {}
        table.add_row(escape(str(r.get("name"))), str(r.get("format")), _fmt(r.get("size_mb", "")),
                      _fmt(q.get("value", "")), percent(r.get("retention")), _fmt(lat.get("p50", "")))
    console.print(table)


def _print_where(run_dir: Path) -> None:
    """The last lines of a run: where the result, the report and the plot are (those that exist)."""
    final = run_dir / "final"
    if final.is_dir():
        parts = [f"{p.name}/" for p in sorted(final.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        console.print(f"result: {escape(str(final))}/" + (f" ({', '.join(parts)})" if parts else ""),
                      highlight=False, soft_wrap=True)
    for label, file in (("report", "report.md"), ("plot", "pareto.png")):
        if (run_dir / file).is_file():
            console.print(f"{label}: {escape(str(run_dir / file))}", highlight=False, soft_wrap=True)


@app.command()
def run(
    config: Path = typer.Argument(..., help="Pipeline YAML (see configs/default.yaml)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    force: list[str] = typer.Option([], "--force", help="Redo this stage (and the ones after it) even if finished."),
    keep_checkpoints: bool = typer.Option(False, "--keep-checkpoints", help=KEEP_HELP),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Run (or resume) the pipeline in CONFIG into runs/<name>/; finished stages are reused.

    One run per folder (runs/<name>/.lock); third-party log lines and warnings go to runs/<name>/log.txt.
    """
    from compress import api
    from compress.run.registry import with_followers

    cfg = api.load(config, set_ + (["keep_checkpoints=true"] if keep_checkpoints else []))

    stages = " -> ".join(with_followers(cfg.stages))  # package follows a run that exports or searches
    console.print(f"[bold]edgepress[/] run '{escape(cfg.name)}' -> {escape(str(cfg.run_dir))}  stages: {stages}")

    def on_stage(name: str, status: str) -> None:
        style = {"running": "yellow", "done": "green", "skipped": "dim"}[status]
        console.print(f"  [{style}]{status:>8}[/] {name}")

    outcomes = api.run(cfg, force=set(force), on_stage=on_stage).stages
    _print_outcomes(outcomes)
    _print_report(cfg.run_dir)
    _print_where(cfg.run_dir)


@app.command()
def validate(
    config: Path = typer.Argument(..., help="Pipeline YAML to check."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Check CONFIG against the schema and print the resolved config (nothing runs)."""
    import yaml

    from compress import api

    cfg = api.validate(config, set_)
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def _finish(run, out: Path) -> None:
    """The table a stage command ends with: its headline and scalar metrics (``run``: compress.api.StageRun)."""
    from compress.core.distributed import is_main_process

    if not is_main_process():
        return
    table = _table(f"{run.stage} -> {out}", ("metric", "value"))
    headline = _stage_headline(run.stage, run.metrics) if run.stage in ("quantize", "bench") else ""
    if headline:
        table.add_row("result", escape(headline))
    for k, v in run.metrics.items():
        if not isinstance(v, (dict, list)):
            table.add_row(k, percent(v) if k == "retention" else escape(_fmt(v)))
    console.print(table)


def _stage_command(verb: str, model: Path, out: Path, set_: list[str], **options) -> None:
    """A stage command through the Python API (compress.api): the verb named ``verb`` on ``model``, ``--set``
    strings applied last."""
    from compress import api

    if not model.exists():
        raise EdgepressError(f"input '{model}' does not exist")
    _finish(getattr(api, verb)(model, out, overrides=set_, **options), out)


TASK_HELP = ("embedding | classification | regression | mlm | token-classification | question-answering "
             "(default: from config)")  # compress.config.Task, spelled out: importing the schema slows --help
TaskOpt = typer.Option(None, "--task", help=TASK_HELP)
FINETUNE_TASK_HELP = "classification | regression | token-classification | question-answering (the tasks that train on labels)"
DataOpt = typer.Option(None, "--data", help="Training/calibration data: .tsv/.csv/.jsonl/.txt, hub:NAME, builtin:pydoc")
ConfigOpt = typer.Option(None, "--config", help="Take defaults from this pipeline YAML.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace a non-empty output directory.")


@app.command()
def finetune(
    model: str = typer.Argument(..., help="Backbone to fine-tune: local folder, hub name, or packaged:minilm-l6."),
    out: Path = typer.Argument(..., help="Output directory (the fine-tuned teacher lands in OUT/model)."),
    data: str = typer.Option(..., "--data", help="Labelled training file."),
    task: str = typer.Option("classification", "--task", help=FINETUNE_TASK_HELP),
    text_column: str = typer.Option("sentence", help="Column with the text."),
    text_pair_column: Optional[str] = typer.Option(None, help="Column with the second text (pairs)."),
    label_column: str = typer.Option("label", help="Column with the label / score."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Dev file for picking the best checkpoint."),
    config: Optional[Path] = ConfigOpt, set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    overwrite: bool = OverwriteOpt, debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Fine-tune a teacher's task head (AdamW, linear warmup, best checkpoint by the dev metric)."""
    from compress import api

    _finish(api.finetune(model, out, task=task, data=data, eval_data=eval_data, text_column=text_column,
                         text_pair_column=text_pair_column, label_column=label_column, config=config,
                         overwrite=overwrite, overrides=set_), out)


@app.command()
def distill(
    model: str = typer.Argument(..., help="Teacher: local folder, hub name, or packaged:minilm-l6."),
    out: Path = typer.Argument(..., help="Output directory (the student lands in OUT/model)."),
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt,
    layers: Optional[int] = typer.Option(None, "--layers", help="Student depth (teacher layers spread evenly)."),
    config: Optional[Path] = ConfigOpt, set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    overwrite: bool = OverwriteOpt, debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Distill TEACHER into a smaller student. Works under torchrun / accelerate launch."""
    from compress import api

    student = {"num_layers": layers} if layers is not None else {}
    _finish(api.distill(model, out, task=task, data=data, config=config, overwrite=overwrite, overrides=set_,
                        **({"student": student} if student else {})), out)


@app.command()
def prune(
    model: Path = typer.Argument(..., help="save_pretrained folder to prune."),
    out: Path = typer.Argument(..., help="Output directory (the pruned model lands in OUT/model)."),
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt,
    config: Optional[Path] = ConfigOpt, set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    overwrite: bool = OverwriteOpt, debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Remove attention heads / FFN neurons for real (see --set prune.* fields)."""
    _stage_command("prune", model, out, set_, task=task, data=data, config=config, overwrite=overwrite)


@app.command("trim-vocab")
def trim_vocab(
    model: Path = typer.Argument(..., help="save_pretrained folder (WordPiece tokenizer) to trim."),
    out: Path = typer.Argument(..., help="Output directory (the trimmed model lands in OUT/model)."),
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt,
    max_size: Optional[int] = typer.Option(None, "--max-size", help="Keep at most this many tokens (vocab.max_size)."),
    config: Optional[Path] = ConfigOpt, set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    overwrite: bool = OverwriteOpt, debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Keep only the tokens DATA uses: embedding rows and tokenizer rewritten together (see --set vocab.*)."""
    _stage_command("trim_vocab", model, out, set_, task=task, data=data, config=config, overwrite=overwrite,
                   **({"vocab": {"max_size": max_size}} if max_size is not None else {}))


@app.command()
def quantize(
    model: Path = typer.Argument(..., help="fp32 ONNX file to quantize."),
    out: Path = typer.Argument(..., help="Output directory."),
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt,
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer folder (for calibration/eval)."),
    student: Optional[Path] = typer.Option(
        None, "--student", help="PyTorch folder the ONNX file was exported from (method qat trains it against "
                                "--set teacher.model=...)."),
    config: Optional[Path] = ConfigOpt, set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    overwrite: bool = OverwriteOpt, debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Quantize an ONNX model (ONNX Runtime / NNCF) with an accuracy guard (see --set quantize.*)."""
    from compress import api
    from compress.model.checks import check_onnx_file

    check_onnx_file(model, "model")  # a folder, a missing or a damaged file: one line each
    if student is not None and not student.is_dir():
        raise EdgepressError(f"--student '{student}' is not a folder (expected a save_pretrained model folder)")
    _finish(api.quantize(model, out, task=task, data=data, tokenizer=tokenizer, student=student, config=config,
                         overwrite=overwrite, overrides=set_), out)


@app.command("export")
def export_cmd(
    model: str = typer.Argument(..., help="Model to export: save_pretrained folder, hub name, or packaged:minilm-l6."),
    out: Path = typer.Argument(..., help="Output directory."),
    task: Optional[str] = TaskOpt,
    formats: Optional[str] = typer.Option(
        None, "--formats", help="Comma-separated formats to write (export.formats), e.g. onnx,ort,openvino,litert: "
                                "onnx | torchscript | ptl | ort | executorch | litert | openvino | coreml"),
    config: Optional[Path] = ConfigOpt, set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    overwrite: bool = OverwriteOpt, debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Export MODEL to runtime formats, each checked against PyTorch (see --set export.*)."""
    from compress.model.loading import model_folder

    folder = model_folder(model)  # packaged:NAME and hub names become a local folder; bad paths fail in one line
    listed = [f"export.formats=[{', '.join(f.strip() for f in formats.split(',') if f.strip())}]"] if formats else []
    _stage_command("export", folder, out, [*listed, *set_], task=task, config=config, overwrite=overwrite)


@app.command("package")
def package_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (runs/<name>)."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """(Re)write RUN_DIR/final/ from a finished run: HF/sentence-transformers folder, optimum ONNX folder, app bundle."""
    from compress import api

    from compress.package.record import PackageRecord

    packaged = api.package(run_dir)  # the package stage again, on the finished stages before it
    info = PackageRecord.read(packaged.outputs["final"])
    table = Table(title=f"packaged {run_dir}/final")
    table.add_column("what")
    table.add_column("value")
    table.add_row("chosen", f"{info.chosen.name} ({info.chosen.origin}, {info.chosen.precision})")
    table.add_row("bundle", f"{', '.join(info.bundle.models)} ({info.bundle.size_mb:.1f} MB)")
    for k, v in info.files.items():
        table.add_row(k, str(v))
    console.print(table)


def _mount_optional_apps() -> None:
    """Sub-apps owned by other packages (bench) are mounted when present."""
    try:
        from benchmarks.cli import app as bench_app
    except ImportError:
        return
    app.add_typer(bench_app, name="bench", help="Benchmark any model file: quality, latency, memory, size; reports.")


_mount_optional_apps()


def _mount_cache_app() -> None:
    """`edgepress cache verify`: checks of the teacher cache distillation runs share (compress.cli.cache)."""
    from compress.cli.cache import app as cache_app

    app.add_typer(cache_app, name="cache")


_mount_cache_app()
use_edgepress_help(app)  # after every sub-app is mounted: CONFIG in usage lines, no <bool> on flags


def _exit_code_of(exc: BaseException) -> int:
    return int(getattr(exc, "exit_code", 1) or 1)


class _Termination:
    """SIGTERM (what `timeout`, systemd, Kubernetes and CI runners send) handled like Ctrl-C: the first one raises
    KeyboardInterrupt in the main thread, so the running stage is named and its unfinished folder never looks
    finished; later ones only mark it, so that cleanup is not cut short."""

    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def _on_term(self, signum, frame) -> None:  # noqa: ANN001 - signal handler signature
        if not self.received:
            self.received = True
            raise Terminated

    def __enter__(self) -> "_Termination":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @property
    def code(self) -> int:
        return 143 if self.received else 130

    @property
    def word(self) -> str:
        return "terminated" if self.received else "interrupted"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one short message and a non-zero exit.

    Exit codes: 0 everything asked for was produced; 1 a user error (the message says what to fix);
    2 a usage or config error; 130 interrupted by Ctrl-C, 143 terminated by SIGTERM (finished stages are kept,
    the same command resumes).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    with _Termination() as stop:
        _main(args, stop)


def _close_progress_bars() -> None:
    """End a progress bar the failure cut short, so the message that follows starts on its own line."""
    tqdm = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or ()):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the message
            pass


def _main(args: list[str], stop: _Termination) -> None:
    debug = "--debug" in args
    try:
        try:
            rv = app(args=args, prog_name="edgepress", standalone_mode=False)
        finally:
            _close_progress_bars()
    except RunInterrupted as exc:
        console.print(f"[yellow]{stop.word}[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(stop.code)
    except KeyboardInterrupt:
        console.print(f"[yellow]{stop.word}[/]: finished stages are kept; run the same command again to resume.")
        sys.exit(stop.code)
    except EdgepressError as exc:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("[yellow]terminated[/]" if stop.received else "[yellow]aborted[/]")
        sys.exit(stop.code)
    except typer.TyperException as exc:  # usage errors: missing argument, unknown option, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            console.print(f"[bold red]error:[/] {escape(exc.format_message())}", soft_wrap=True)
        sys.exit(_exit_code_of(exc))
    except Exception as exc:  # noqa: BLE001 - the last net: one line, traceback only with --debug
        if debug:
            raise
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        console.print(f"[bold red]error:[/] {escape(type(exc).__name__)}: {escape(first)}\n"
                      "(this is a bug or an unchecked input: run again with --debug for the traceback)", soft_wrap=True)
        sys.exit(1)
    if rv == 130:  # typer turns a Ctrl-C (or our SIGTERM) outside a stage into Exit(130) and returns it
        console.print(f"[yellow]{stop.word}[/]: nothing unfinished was kept; run the same command again.")
        rv = stop.code
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
