"""`edgepress bench`: measure any model files (latency, memory, size, quality) and compare reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from compress.errors import EdgepressError, UsageError

MAX_TOKENS = 8192  # no BERT-family model takes longer inputs; a larger --seq / --max-length is a typo

app = typer.Typer(
    name="bench",
    help="Measure model files — PyTorch folders, ONNX/.ort, TorchScript .pt/.ptl — locally or on remote "
         "devices (ssh://user@host[:port], adb://serial), and write report.json/md/csv + a Pareto plot.",
    no_args_is_help=True,
    add_completion=False,
)


def _ints(text: str, what: str, upper: int | None = None) -> list[int]:
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


def _check_lengths(specs: list[Any], seq_lens: list[int], max_length: int, check_max_length: bool) -> None:
    """Refuse sequence lengths a model's position embeddings cannot take, before anything is measured."""
    from compress.checks import position_limit, read_model_config

    if not 1 <= max_length <= MAX_TOKENS:
        raise UsageError(f"--max-length {max_length}: expected a token count from 1 to {MAX_TOKENS}")
    for spec in specs:
        folder = spec.path if spec.path.is_dir() else spec.path.parent
        if not (folder / "config.json").is_file():
            continue  # a bare model file: its runtime reports an input that is too long
        try:
            limit = position_limit(read_model_config(folder))
        except EdgepressError:
            continue  # a damaged config: measuring that model reports it (status error)
        if limit is None:
            continue
        if max(seq_lens) > limit:
            raise UsageError(f"--seq {max(seq_lens)} is beyond model '{spec.path}''s position embeddings "
                             f"({limit} tokens): give --seq {limit} or less")
        if check_max_length and max_length > limit:
            raise UsageError(f"--max-length {max_length} is beyond model '{spec.path}''s position embeddings "
                             f"({limit} tokens): give --max-length {limit} or less")


def parse_model_arg(arg: str, role: str = "variant") -> Any:
    """``PATH`` or ``NAME=PATH`` -> ModelSpec (name defaults to the file stem / folder name)."""
    from benchmarks.harness import ModelSpec

    name, sep, path = arg.partition("=")
    if not sep:
        name, path = "", arg
    p = Path(path).expanduser()
    if not p.exists():
        raise EdgepressError(f"model '{path}' does not exist (give a model file or a save_pretrained folder)")
    precision = "int8" if any(t in p.name.lower() for t in ("int8", "qint", "quant")) else "fp32"
    return ModelSpec(name or (p.name if p.is_dir() else p.stem), p, None, precision, role)


def load_eval(data: str, task: str, text_column: str, pair_column: Optional[str], label_column: Optional[str],
              max_samples: int) -> Any:
    """EvalSet from a data file; embedding + pairs + label column is STS (float scores)."""
    from benchmarks.evalset import EvalSet
    from compress.data import load_text_data

    td = load_text_data(data, text_column, pair_column, label_column, task=task, limit=max_samples)
    return EvalSet.from_text_data(td)


@app.command("run")
def run_cmd(
    models: list[str] = typer.Argument(..., help="model files or save_pretrained folders; NAME=PATH to name one"),
    task: str = typer.Option("embedding", help="embedding | classification | regression | mlm (latency only)"),
    teacher: Optional[str] = typer.Option(None, help="reference model (usually a PyTorch folder): retention = metric / its metric"),
    tokenizer: Optional[str] = typer.Option(None, help="tokenizer folder (default: each PyTorch folder's own)"),
    data: Optional[str] = typer.Option(None, help="eval file (.tsv/.csv/.jsonl/.txt) for quality and realistic lengths"),
    text_column: str = typer.Option("sentence", help="text column of --data"),
    pair_column: Optional[str] = typer.Option(None, help="second-sentence column (STS / pair tasks)"),
    label_column: Optional[str] = typer.Option(None, help="label / gold-score column; without it quality is fidelity to --teacher"),
    max_samples: int = typer.Option(500, min=2, help="eval rows used for quality"),
    batch: str = typer.Option("1", help="batch sizes, comma-separated (swept)"),
    seq: str = typer.Option("128", help="sequence lengths, comma-separated (swept; ignored with --realistic)"),
    realistic: bool = typer.Option(False, help="draw sequence lengths from --data texts, padding each batch to its longest"),
    max_length: int = typer.Option(128, help="tokenizer truncation length"),
    threads: Optional[int] = typer.Option(None, min=1, help="intra-op threads (default: the runtime's, usually all cores)"),
    inter_threads: int = typer.Option(1, min=1, help="inter-op threads"),
    warmup: int = typer.Option(10, min=0, help="untimed runs before measuring"),
    min_runs: int = typer.Option(50, min=1, help="measure at least this many runs ..."),
    min_seconds: float = typer.Option(2.0, min=0, help="... and at least this many seconds"),
    device: str = typer.Option("cpu", help="cpu | cuda (ORT CUDA EP, PyTorch fp16) | tensorrt (ORT TensorRT EP)"),
    target: list[str] = typer.Option([], help="remote device, repeatable: ssh://user@host[:port] or adb://serial (ONNX only)"),
    known_hosts: Optional[str] = typer.Option(None, help="known_hosts for ssh targets (default ~/.ssh/known_hosts)"),
    host_key: Optional[str] = typer.Option(None, help="trusted host public key line for ssh targets"),
    identity: Optional[str] = typer.Option(None, help="private key file for ssh targets"),
    remote_python: str = typer.Option("python3", help="python on the target (needs onnxruntime + numpy)"),
    remote_dir: str = typer.Option("/tmp/edgepress-bench", help="working folder on the target"),
    out: Path = typer.Option(Path("bench-report"), help="folder for report.json, report.md, report.csv, pareto.png"),
    allow_partial: bool = typer.Option(False, "--allow-partial",
                                       help="exit 0 even when a model could not be measured (its row says why)"),
) -> None:
    """Measure MODELS: latency sweep (p50/p90/p99), cold start, peak RSS, size, and quality when --data is given.

    Example: edgepress bench run teacher=runs/x/01-distill/model runs/x/03-quantize/model.int8.onnx
    --teacher runs/x/01-distill/model --data ../shared/data/stsb/test.tsv --text-column sentence1
    --pair-column sentence2 --label-column score --batch 1,8 --threads 4

    Exit code 1 when any model could not be measured (status error), unless --allow-partial; the report is
    written either way.
    """
    from rich.console import Console

    from benchmarks.harness import BenchSettings, benchmark
    from benchmarks.remote import RemoteOptions
    from benchmarks.report import write_report
    from benchmarks.runners import DEVICES
    from benchmarks.runners.base import Threads, available_cores
    from compress.console import capture_logs
    from compress.pipeline import ensure_output_dir

    if task not in ("embedding", "classification", "regression", "mlm"):
        raise EdgepressError(f"--task '{task}': expected embedding, classification, regression or mlm")
    if device not in DEVICES:
        raise EdgepressError(f"--device '{device}': expected one of {', '.join(DEVICES)}")
    specs = [parse_model_arg(m) for m in models]
    if teacher:
        specs.insert(0, parse_model_arg(teacher if "=" in teacher else f"teacher={teacher}", role="teacher"))
    if realistic and not data:
        raise EdgepressError("--realistic draws sequence lengths from eval texts: give --data")
    eval_set = load_eval(data, task, text_column, pair_column, label_column, max_samples) if data else None
    if eval_set is not None and tokenizer is None and not any(s.path.is_dir() for s in specs):
        raise EdgepressError("quality needs a tokenizer: pass --tokenizer DIR (no PyTorch folder among the models)")
    seq_lens = _ints(seq, "seq", MAX_TOKENS)
    _check_lengths(specs, seq_lens, max_length, check_max_length=data is not None)
    ensure_output_dir(out, "--out")
    settings = BenchSettings(batch_sizes=_ints(batch, "batch"), seq_lens=seq_lens, realistic=realistic,
                             warmup=warmup, min_runs=min_runs, min_seconds=min_seconds,
                             threads=Threads(threads or available_cores(), inter_threads), device=device, max_length=max_length)
    opts = RemoteOptions(known_hosts=known_hosts, host_key=host_key, identity=identity, python=remote_python,
                         remote_dir=remote_dir)
    tok = tokenizer or next((str(s.path) for s in specs if s.path.is_dir()), None)
    console = Console(stderr=True)
    with capture_logs(out / "log.txt"):  # runtime warnings and INFO lines go to the log, not the console
        report = benchmark(specs, task, settings, tokenizer_path=tok, eval_set=eval_set, targets=list(target),
                           remote_options=opts, progress=lambda msg: console.print(f"[dim]{msg}[/dim]"))
    paths = write_report(report, out)
    _print_table(report)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    failed = [m for m in report.get("models", []) if m.get("status") == "error"]
    if failed and not allow_partial:
        first = str(failed[0].get("reason") or "").strip().splitlines()
        raise EdgepressError(f"{len(failed)} of {len(report.get('models', []))} measurements failed ({failed[0].get('name')}: "
                             f"{first[0][:200] if first else 'no reason given'}); the report in '{out}' lists them; "
                             "pass --allow-partial to accept a partial report")


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
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
        table.add_row(r["device"], r["variant"], f"{r['format']}/{r['precision']}",
                      "–" if r["size_mb"] is None else f"{r['size_mb']:.1f}", val, ret, *lat, status)
    Console().print(table)


@app.command("compare")
def compare_cmd(
    reports: list[str] = typer.Argument(..., help="report.json files, run folders (runs/NAME) or bench output folders"),
    label: list[str] = typer.Option([], help="column label per report (default: its folder name)"),
    out: Optional[Path] = typer.Option(None, help="also write the table as Markdown to this file"),
) -> None:
    """Put several runs' report.json side by side: metric, retention and p50 latency per variant and device."""
    from rich.console import Console
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
    header, table_rows = compare(loaded, label or None)
    table = Table(title="edgepress bench compare")
    for h in header:
        table.add_column(h)
    for r in table_rows:
        table.add_row(*r)
    Console().print(table)
    if out is not None:
        out.write_text(compare_markdown(header, table_rows))
