"""`edgepress bench`: measure any model files (latency, memory, size, quality) and compare reports."""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import typer

from benchmarks.config import BenchConfig
from compress.errors import EdgepressError, UsageError
from compress.tasks import task_spec

MAX_TOKENS = 8192  # no BERT-family model takes longer inputs; a larger --seq / --max-length is a typo

app = typer.Typer(
    name="bench",
    help="Measure model files — PyTorch folders, ONNX/.ort, TorchScript .pt/.ptl — locally or on remote "
         "devices (ssh://user@host[:port], adb://serial), and write report.json/md/csv + a Pareto plot.",
    no_args_is_help=True,
    add_completion=False,
)


def _ints(text: str, what: str, upper: int | None = None) -> list[int]:
    """Comma-separated positive integers (at most ``upper``) from option ``--what``'s text."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--{what} '{text}': expected comma-separated integers, e.g. 1,8") from None
    if not values or min(values) < 1:
        raise UsageError(f"--{what} '{text}': expected positive integers")
    if upper is not None and max(values) > upper:
        raise UsageError(f"--{what} '{text}': {max(values)} is beyond {upper} tokens, longer than any BERT-family "
                         "model takes")
    return values


# ------------------------------------------------------------------ bench-section options, made from BenchConfig

MEASURING_PANEL = "Measuring (the config's bench section)"
SWITCHES_PANEL = "Measuring switches (the config's bench section)"


@dataclass(frozen=True)
class ConfigOption:
    """A `bench run` option that sets BenchConfig ``fields``: its ``flag`` and a CLI-only ``note`` for its help.

    Name, type, default, lower bound and help text come from the fields themselves. A list of ints is typed
    comma-separated; ``--batch`` fills two fields: the first size is ``batch_size``, the rest ``sweep_batch_sizes``.
    """

    flag: str
    fields: tuple[str, ...]
    note: str = ""
    upper: int | None = None  # largest value a comma-separated list takes

    @property
    def name(self) -> str:
        """The command's parameter name (the flag without dashes)."""
        return self.flag.lstrip("-").replace("-", "_")


# how `bench run` spells BenchConfig fields, in --help order; a field left out gets --its-name-with-dashes
# (after these), so every field has an option (pinned by tests/benchmarks/test_cli_options.py)
SPELLINGS: tuple[ConfigOption, ...] = (
    ConfigOption("--batch", ("batch_size", "sweep_batch_sizes"), "comma-separated: the first is bench.batch_size, "
                 "the rest bench.sweep_batch_sizes"),
    ConfigOption("--seq", ("seq_lens",), "comma-separated; measured with --no-realistic or without --data",
                 upper=MAX_TOKENS),
    ConfigOption("--realistic", ("realistic",), "needs --data; without it the fixed --seq lengths are measured"),
    ConfigOption("--max-samples", ("max_eval_samples",)),
    ConfigOption("--threads", ("threads",)),
    ConfigOption("--inter-threads", ("inter_threads",)),
    ConfigOption("--warmup", ("warmup",)),
    ConfigOption("--min-runs", ("min_runs",)),
    ConfigOption("--min-seconds", ("min_seconds",)),
    ConfigOption("--device", ("device",)),
    ConfigOption("--target", ("targets",), "repeatable; ONNX models only"),
    ConfigOption("--known-hosts", ("known_hosts",)),
    ConfigOption("--host-key", ("host_key",)),
    ConfigOption("--identity", ("ssh_identity",)),
    ConfigOption("--remote-python", ("remote_python",)),
    ConfigOption("--remote-dir", ("remote_dir",)),
    ConfigOption("--baseline", ("baselines",), "repeatable; built from --teacher (a PyTorch folder) into OUT/baselines"),
)


def _all_options(spelled: tuple[ConfigOption, ...]) -> tuple[ConfigOption, ...]:
    """``spelled``, then an option named after each BenchConfig field they leave out."""
    covered = {f for opt in spelled for f in opt.fields}
    rest = [ConfigOption("--" + name.replace("_", "-"), (name,)) for name in BenchConfig.model_fields if name not in covered]
    return (*spelled, *rest)


CONFIG_OPTIONS = _all_options(SPELLINGS)


def _field(name: str) -> Any:
    """BenchConfig's pydantic FieldInfo of ``name``."""
    return BenchConfig.model_fields[name]


def field_default(name: str) -> Any:
    """The default of BenchConfig field ``name`` (a fresh list for list fields)."""
    return _field(name).get_default(call_default_factory=True)


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None``, else ``annotation`` itself."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    is_optional = type(None) in typing.get_args(annotation) and len(args) == 1
    return args[0] if is_optional else annotation


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values of a Literal (or of a list of Literals); empty for any other type."""
    inner = _without_none(annotation)
    if typing.get_origin(inner) is list:
        inner = typing.get_args(inner)[0]
    return tuple(typing.get_args(inner)) if typing.get_origin(inner) is Literal else ()


def _is_list(annotation: Any) -> bool:
    """Whether a field holds a list."""
    return typing.get_origin(annotation) is list


def _is_int_list(annotation: Any) -> bool:
    """Whether a field holds a list of ints."""
    return _is_list(annotation) and typing.get_args(annotation) == (int,)


def is_comma_list(opt: ConfigOption) -> bool:
    """Whether the option is typed as comma-separated ints (it sets a list of ints)."""
    return any(_is_int_list(_field(f).annotation) for f in opt.fields)


def option_type(opt: ConfigOption) -> Any:
    """The Python type typer parses the option's text into."""
    annotation = _field(opt.fields[0]).annotation
    if is_comma_list(opt):
        return str
    if _is_list(annotation):
        return list[str]
    if _choices(annotation):
        return str
    inner = _without_none(annotation)
    return Optional[inner] if inner is not annotation else annotation


def option_default(opt: ConfigOption) -> Any:
    """The option's default, written as the command line takes it (int lists comma-separated)."""
    if is_comma_list(opt):
        values = [v for f in opt.fields for v in _as_list(field_default(f))]
        return ",".join(str(v) for v in values)
    return field_default(opt.fields[0])


def _as_list(value: Any) -> list[Any]:
    """``value`` as a list (a scalar field such as batch_size becomes one item)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _lower_bound(name: str) -> int | float | None:
    """The ``ge`` bound pydantic checks on a scalar field, for typer's ``min``."""
    return next((getattr(m, "ge") for m in _field(name).metadata if hasattr(m, "ge")), None)


def option_help(opt: ConfigOption) -> str:
    """The fields' descriptions, then the CLI note; a single field's config key (bench.NAME) closes it."""
    text = "; ".join(_field(f).description or f for f in opt.fields)
    if opt.note:
        text += f"; {opt.note}"
    return text if len(opt.fields) > 1 else f"{text} (bench.{opt.fields[0]})"


def typer_option(opt: ConfigOption) -> Any:
    """The typer.Option declaring ``opt``: flag (``--x/--no-x`` for booleans), default, bound and help."""
    decls = [f"{opt.flag}/--no-{opt.flag[2:]}" if option_type(opt) is bool else opt.flag]
    extra: dict[str, Any] = {}
    if len(opt.fields) == 1 and not _is_list(_field(opt.fields[0]).annotation):
        bound = _lower_bound(opt.fields[0])
        if bound is not None and option_type(opt) is not bool:
            extra["min"] = bound
    # on/off switches in a panel of their own: their --no-X names take a column that would squeeze every help text
    panel = SWITCHES_PANEL if option_type(opt) is bool else MEASURING_PANEL
    return typer.Option(option_default(opt), *decls, help=option_help(opt), rich_help_panel=panel, **extra)


def _check_choices(opt: ConfigOption, value: Any) -> None:
    """Refuse a value outside a Literal field's choices, naming the flag (like --task)."""
    choices = _choices(_field(opt.fields[0]).annotation)
    for v in _as_list(value) if choices else ():
        if v not in choices:
            raise EdgepressError(f"{opt.flag} '{v}': expected one of {', '.join(choices)}")


def option_values(opt: ConfigOption, value: Any) -> dict[str, Any]:
    """BenchConfig field -> value for what the option was given (comma lists parsed, --batch split)."""
    _check_choices(opt, value)
    if not is_comma_list(opt):
        return {opt.fields[0]: value}
    numbers = _ints(value, opt.flag[2:], opt.upper)
    if len(opt.fields) == 1:
        return {opt.fields[0]: numbers}
    head, rest = opt.fields
    return {head: numbers[0], rest: numbers[1:]}


def bench_config(given: dict[str, Any]) -> BenchConfig:
    """The BenchConfig the options describe (parameter name -> typed value); a value it refuses names its flag."""
    from pydantic import ValidationError

    values: dict[str, Any] = {}
    for opt in CONFIG_OPTIONS:
        values.update(option_values(opt, given[opt.name]))
    try:
        return BenchConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = next((o.flag for o in CONFIG_OPTIONS if field in o.fields), "bench options")
        raise UsageError(f"{flag}: {err['msg']}") from None


def with_bench_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with one typer option per CONFIG_OPTIONS entry in place of its ``bench`` parameter, which
    it receives as the validated BenchConfig."""
    hints = typing.get_type_hints(command)
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()
           if p.name != "bench"]
    made = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=typer_option(o), annotation=option_type(o))
            for o in CONFIG_OPTIONS]

    def wrapper(**kwargs: Any) -> None:
        given = {o.name: kwargs.pop(o.name) for o in CONFIG_OPTIONS}
        return command(**kwargs, bench=bench_config(given))

    functools.update_wrapper(wrapper, command)
    del wrapper.__wrapped__  # typer reads the signature below, not the wrapped function's
    wrapper.__signature__ = inspect.Signature([*own, *made])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *made]}
    return wrapper


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether the command's parameter ``name`` was typed (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _check_lengths(specs: list[Any], seq_lens: list[int], max_length: int, check_max_length: bool) -> None:
    """Refuse sequence lengths a model's position embeddings cannot take, before anything is measured.

    ``seq_lens`` are the fixed lengths to be measured (none in realistic mode).
    """
    from compress.checks import model_config_folder, position_limit, read_model_config

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
    from benchmarks.runners import locate

    name, sep, path = arg.partition("=")
    if not sep:
        name, path = "", arg
    p = Path(path).expanduser()
    if not p.exists():
        raise EdgepressError(f"model '{path}' does not exist (give a model file or a save_pretrained folder)")
    locate(p)  # a folder with no model, or with several ONNX files, is a usage error: say so before measuring
    precision = onnx_precision(p) or ("int8" if any(t in p.name.lower() for t in ("int8", "qint", "quant")) else "fp32")
    return ModelSpec(name or (p.name if p.is_dir() else p.stem), p, None, precision, role)


def tag_names_of(specs: list[Any]) -> list[str]:
    """The tag of each class id from the first model whose config.json names them (token classification): a
    folder's own, or the one beside an ONNX file (an optimum or `edgepress export` folder)."""
    from compress.checks import model_config_folder, read_model_config

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
    from compress.data import announce_cut

    spec = task_spec(task)
    rows = spec.read(data, text_column, pair_column, label_column)  # the task's reader (TaskSpec.reader)
    announce_cut(f"--data '{data}'", min(len(rows), max_samples), len(rows), "--max-samples")
    eval_set = EvalSet.from_text_data(rows.head(max_samples))
    if spec.gold == "tags":  # gold tags are scored by name: the model's tag of each class id
        eval_set.label_names = tag_names_of(specs or [])
    return eval_set


@app.command("run")
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
    from compress.console import capture_logs
    from compress.pipeline import ensure_output_dir

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
        from compress.model_card import teacher_of

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
    from compress.console import note

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
    from compress.console import note

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


@app.command("compare")
def compare_cmd(
    reports: list[str] = typer.Argument(..., help="report.json files, run folders (runs/NAME) or bench output folders"),
    label: list[str] = typer.Option([], help="column label per report (default: its folder name)"),
    out: Optional[Path] = typer.Option(None, help="also write the table as Markdown to this file"),
) -> None:
    """Put several runs' report.json side by side: one row per model (matched by the hash of its weights, named by
    depth-prune-vocabulary-precision), its metric, retention, p50 and size per run, failed models with their reason,
    and the change against the first report. Settings that differ between the reports are printed first."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from benchmarks.report import compare, compare_markdown, load_report

    from benchmarks.report import find_report

    for r in reports:
        p = find_report(r)
        with p.open("rb") as fh:
            head = fh.read(4096)
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(head) - exc.start > 4:  # not just a multi-byte character cut at the 4 KiB boundary
                raise EdgepressError(f"'{p}' is a binary file, not a report.json; give the report.json that "
                                     "`edgepress bench run` or `edgepress run` wrote (or its folder)") from None
        if b"\x00" in head:
            raise EdgepressError(f"'{p}' is a binary file, not a report.json; give the report.json that "
                                 "`edgepress bench run` or `edgepress run` wrote (or its folder)")
    loaded = [load_report(r) for r in reports]
    if label and len(label) != len(loaded):
        raise EdgepressError(f"--label given {len(label)} times for {len(loaded)} reports")
    notes, header, table_rows = compare(loaded, label or None)
    console = Console()
    for n in notes:
        console.print(f"[yellow]warning:[/] {escape(n)}", highlight=False)
    table = Table(title="edgepress bench compare")
    for h in header:
        table.add_column(escape(h))
    for r in table_rows:
        table.add_row(*map(escape, r))
    console.print(table)
    if out is not None:
        out.write_text(compare_markdown(header, table_rows, notes))


@app.command("headline")
def headline_cmd(
    runs: list[Path] = typer.Argument(..., help="finished run folders (runs/NAME) holding a search winner's report.json"),
    out: Optional[Path] = typer.Option(None, help="also write the tables as Markdown to this file"),
) -> None:
    """Issue 17's headline check of finished runs: the search winner against the teacher, Optimum INT8 and the
    teacher as ORT fp32 (size, p50, throughput, session memory, retention), each target marked met or not."""
    from benchmarks.headline import headline, to_markdown

    md = to_markdown([headline(r) for r in runs])
    typer.echo(md)
    if out is not None:
        out.write_text(md)
