"""`edgepress bench run`: measure model files locally or on remote devices; write report.json/md/csv."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from benchmarks.cli.options import MAX_TOKENS, given_on_command_line, with_bench_options
from benchmarks.config import BenchConfig
from compress.core.errors import EdgepressError, UsageError
from compress.tasks import task_spec


def _check_lengths(specs: list[Any], seq_lens: list[int], max_length: int, check_max_length: bool) -> None:
    """Refuse sequence lengths a model's position embeddings cannot take, before anything is measured.

    ``seq_lens`` are the fixed lengths to be measured (none in realistic mode).
    """
    from compress.model.checks import model_config_folder, position_limit, read_model_config

    if not 1 <= max_length <= MAX_TOKENS:
        raise UsageError(f"--max-length {max_length}: expected a token count from 1 to {MAX_TOKENS}")
    for spec in specs:
        folder = model_config_folder(spec.path)
        if folder is None:
            continue  # a bare model file: its runtime reports an input that is too long
        try:
            limit = position_limit(read_model_config(folder))
        except EdgepressError:
            continue  # a damaged config: measuring that model reports it (status error)
        if limit is None:
            continue
        if seq_lens and max(seq_lens) > limit:
            raise UsageError(f"--seq {max(seq_lens)} is beyond model '{spec.path}''s position embeddings "
                             f"({limit} tokens): give --seq {limit} or less")
        if check_max_length and max_length > limit:
            raise UsageError(f"--max-length {max_length} is beyond model '{spec.path}''s position embeddings "
                             f"({limit} tokens): give --max-length {limit} or less")


def parse_model_arg(arg: str, role: str = "variant") -> Any:
    """``PATH`` or ``NAME=PATH`` -> ModelSpec (name defaults to the file stem / folder name)."""
    from benchmarks.harness import ModelSpec
    from benchmarks.identity import onnx_precision
    from benchmarks.runners import UNSUPPORTED, locate

    name, sep, path = arg.partition("=")
    if not sep:
        name, path = "", arg
    p = Path(path).expanduser()
    if not p.exists():
        raise EdgepressError(f"model '{path}' does not exist (give a model file or a save_pretrained folder)")
    fmt = locate(p)[0]  # a folder with no model, or with several ONNX files, is a usage error: say so before measuring
    if fmt in UNSUPPORTED:  # a format no runner here can time (Core ML): say why before loading anything
        raise EdgepressError(f"model '{path}': {UNSUPPORTED[fmt]}")
    from benchmarks.runners.litert_runner import tflite_precision

    precision = (onnx_precision(p) or tflite_precision(p)
                 or ("int8" if any(t in p.name.lower() for t in ("int8", "qint", "quant")) else "fp32"))
    return ModelSpec(name or (p.name if p.is_dir() else p.stem), p, None, precision, role)


def tag_names_of(specs: list[Any]) -> list[str]:
    """The tag of each class id from the first model whose config.json names them (token classification): a
    folder's own, or the one beside an ONNX file (an optimum or `edgepress export` folder)."""
    from compress.model.checks import model_config_folder, read_model_config

    for spec in specs:
        folder = model_config_folder(Path(spec.path))
        if folder is not None:
            id2label = read_model_config(folder).get("id2label") or {}
            if id2label:
                return [id2label[k] for k in sorted(id2label, key=int)]
    raise EdgepressError("token-classification needs the tag names: pass a model folder (e.g. --teacher DIR), or an "
                         "ONNX file with the model's config.json beside it, whose config.json has id2label")


def load_eval(data: str, task: str, text_column: str, pair_column: Optional[str], label_column: Optional[str],
              max_samples: int, specs: list[Any] | None = None) -> Any:
    """EvalSet from a data file; embedding + pairs + label column is STS (float scores); CoNLL/JSONL tagged
    sentences for token-classification (tag names from a model folder); SQuAD JSON for question-answering."""
    from benchmarks.evalset import EvalSet
    from compress.data.rows import announce_cut

    spec = task_spec(task)
    rows = spec.read(data, text_column, pair_column, label_column)  # the task's reader (TaskSpec.reader)
    announce_cut(f"--data '{data}'", min(len(rows), max_samples), len(rows), "--max-samples")
    eval_set = EvalSet.from_text_data(rows.head(max_samples))
    if spec.gold == "tags":  # gold tags are scored by name: the model's tag of each class id
        eval_set.label_names = tag_names_of(specs or [])
    return eval_set


@with_bench_options
def run_cmd(
    ctx: typer.Context,
    models: list[str] = typer.Argument(..., help="model files or save_pretrained folders; NAME=PATH to name one"),
    task: str = typer.Option("embedding", help="embedding | classification | regression | mlm (latency only) | "
                                               "token-classification (--data: CoNLL/JSONL) | question-answering "
                                               "(--data: SQuAD JSON)"),
    teacher: Optional[str] = typer.Option(None, help="reference model (usually a PyTorch folder): retention = metric / its metric"),
    tokenizer: Optional[str] = typer.Option(None, help="tokenizer folder (default: each PyTorch folder's own)"),
    data: Optional[str] = typer.Option(None, help="eval file (.tsv/.csv/.jsonl/.txt) for quality and realistic lengths"),
    text_column: str = typer.Option("sentence", help="text column of --data"),
    pair_column: Optional[str] = typer.Option(None, help="second-sentence column (STS / pair tasks)"),
    label_column: Optional[str] = typer.Option(None, help="label / gold-score column; without it quality is fidelity to --teacher"),
    max_length: int = typer.Option(128, help="tokenizer truncation length"),
    doc_stride: Optional[int] = typer.Option(None, min=1, help="question-answering: tokens shared by consecutive "
                                                               "context windows (default: a third of --max-length)"),
    out: Path = typer.Option(Path("bench-report"), help="folder for report.json, report.md, report.csv, pareto.png"),
    allow_partial: bool = typer.Option(False, "--allow-partial",
                                       help="exit 0 even when a model could not be measured (its row says why)"),
    *,
    bench: BenchConfig,
) -> None:
    """Measure MODELS: latency sweep (p50/p90/p99), cold start, peak RSS, size, and quality when --data is given.

    Example: edgepress bench run teacher=runs/x/01-distill/model runs/x/03-quantize/model.int8.onnx
    --teacher runs/x/01-distill/model --data ../shared/data/stsb/test.tsv --text-column sentence1
    --pair-column sentence2 --label-column score --batch 1,8 --threads 4

    With --data, sequence lengths come from its texts (--realistic, the default, as in a config's bench
    section); --no-realistic measures the fixed --seq lengths. The measuring options take the same names,
    defaults and checks as the config's bench section.

    Exit code 1 when any model could not be measured (status error), unless --allow-partial; the report is
    written either way.
    """
    from rich.console import Console
    from rich.markup import escape

    from benchmarks.api import distinct_names, remote_options, settings_from_config
    from benchmarks.harness import benchmark
    from benchmarks.report import write_report
    from compress.core.console import capture_logs
    from compress.run.pipeline import ensure_output_dir

    try:
        task_spec(task)  # the registry as it is now: a task registered after import counts
    except EdgepressError as exc:
        raise EdgepressError(f"--task: {exc}") from None
    specs = [parse_model_arg(m) for m in models]
    if teacher:
        specs.insert(0, parse_model_arg(teacher if "=" in teacher else f"teacher={teacher}", role="teacher"))
    specs = distinct_names(specs)  # two model.onnx files from different folders: model, model-2
    bench = _realistic_only_with_data(ctx, bench, data is not None)
    eval_set = load_eval(data, task, text_column, pair_column, label_column, bench.max_eval_samples, specs) \
        if data else None
    if eval_set is not None and eval_set.examples is not None:  # question-answering: context windows
        eval_set.doc_stride = doc_stride or max(1, max_length // 3)
    if eval_set is not None and tokenizer is None and not any(s.path.is_dir() for s in specs):
        raise EdgepressError("quality needs a tokenizer: pass --tokenizer DIR (no PyTorch folder among the models)")
    _check_lengths(specs, [] if bench.realistic else bench.seq_lens, max_length, check_max_length=data is not None)
    ensure_output_dir(out, "--out")
    console = Console(stderr=True)
    with capture_logs(out / "log.txt"):  # runtime warnings and INFO lines go to the log, not the console
        specs += _baseline_specs(bench, specs, task, out, eval_set, max_length)
        tok = tokenizer or next((str(s.path) for s in specs if s.path.is_dir()), None)
        report = benchmark(specs, task, settings_from_config(bench, max_length, seed=0), tokenizer_path=tok,
                           eval_set=eval_set, targets=list(bench.targets), remote_options=remote_options(bench),
                           progress=lambda msg: console.print(f"[dim]{escape(msg)}[/dim]"))
    teacher_spec = next((s for s in specs if s.role == "teacher"), None)
    if teacher_spec is not None:  # report.md names the teacher model, not the word 'teacher'
        from compress.package.card import teacher_of

        path = Path(teacher_spec.path)
        report["teacher_model"] = teacher_of(str(path)).reference if path.is_dir() else path.name
    paths = write_report(report, out)
    _print_table(report)
    console.print(f"wrote {escape(', '.join(str(p) for p in paths.values()))}")
    failed = [m for m in report.get("models", []) if m.get("status") == "error"]
    if failed and not allow_partial:
        first = str(failed[0].get("reason") or "").strip().splitlines()
        raise EdgepressError(f"{len(failed)} of {len(report.get('models', []))} measurements failed ({failed[0].get('name')}: "
                             f"{first[0][:200] if first else 'no reason given'}); the report in '{out}' lists them; "
                             "pass --allow-partial to accept a partial report")


def _realistic_only_with_data(ctx: typer.Context, bench: BenchConfig, has_data: bool) -> BenchConfig:
    """Realistic lengths need --data: refuse a typed --realistic without it, else measure the fixed --seq lengths.

    With --data and realistic lengths, a typed --seq is not measured: a note says so.
    """
    from compress.core.console import note

    if bench.realistic and not has_data:
        if given_on_command_line(ctx, "realistic"):
            raise EdgepressError("--realistic draws sequence lengths from eval texts: give --data")
        return bench.model_copy(update={"realistic": False})
    if bench.realistic and given_on_command_line(ctx, "seq"):
        note("--seq is not measured: sequence lengths come from the --data texts (--no-realistic measures --seq)")
    return bench


def _baseline_specs(bench: BenchConfig, specs: list[Any], task: str, out: Path,
                    eval_set: Any = None, max_length: int = 128) -> list[Any]:
    """The Optimum baselines of --baseline, built from the --teacher folder into OUT/baselines (the static one
    calibrates on the --data rows: this command has no training split)."""
    if not bench.baselines:
        return []
    from benchmarks.baseline import build_baselines
    from benchmarks.harness import ModelSpec
    from compress.core.console import note

    teacher = next((s for s in specs if s.role == "teacher"), None)
    if teacher is None or not teacher.path.is_dir():
        raise UsageError("--baseline exports the teacher with Optimum: give --teacher as a PyTorch folder")
    calibration = None
    if "optimum-int8-static" in bench.baselines:
        if eval_set is None or not eval_set.texts:
            raise UsageError("--baseline optimum-int8-static calibrates on text: give --data")
        note("optimum-int8-static calibrates on --data rows (no training split here): its quality is optimistic")
        calibration = (list(eval_set.texts), None if eval_set.pairs is None else list(eval_set.pairs))
    built = build_baselines(list(bench.baselines), teacher.path, task, out / "baselines", calibration=calibration,
                            max_length=max_length)
    return [ModelSpec(name, path, "onnx", "int8" if "int8" in name else "fp32", role="baseline",
                      tokenizer=teacher.path)
            for name, path in built.items()]


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from benchmarks.report import rows

    table = Table(title=f"edgepress bench — {report['task']}")
    for col in ("device", "variant", "format", "size MB", "metric", "retention", "p50 ms", "p90 ms", "status"):
        table.add_column(col)
    for r in rows(report):
        ret = "–" if r["retention"] is None else f"{100 * r['retention']:.1f} %"
        val = "–" if r["value"] is None else f"{r['metric']}={r['value']:.4f}"
        lat = [("–" if r[k] is None else f"{r[k]:.2f}") for k in ("p50_ms", "p90_ms")]
        reason = str(r["reason"] or "")
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {reason[:48]}{'…' if len(reason) > 48 else ''}"
        table.add_row(*map(escape, (r["device"], f"{r['variant']} [{r['label']}]" if r["label"] else r["variant"],
                                    f"{r['format']}/{r['precision']}",
                                    "–" if r["size_mb"] is None else f"{r['size_mb']:.1f}", val, ret, *lat, status)))
    Console().print(table)
