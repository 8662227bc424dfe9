"""The Python API: measure model files (latency, memory, size, cold start, quality) into report entries.

    from benchmarks.harness import BenchSettings, ModelSpec, EvalSet, benchmark
    report = benchmark([ModelSpec("student", "out/model.onnx")], task="embedding",
                       tokenizer_path="out/tokenizer", eval_set=EvalSet(texts, pairs, scores),
                       settings=BenchSettings(batch_sizes=[1], seq_lens=[128]))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from benchmarks.evalset import EvalSet
from benchmarks.feeds import fixed_feeds, token_lengths, tokenize_feeds
from benchmarks.runners.base import Runner, Threads
from benchmarks.runners.torch_runner import torch_threads_restored
from compress.core.errors import EdgepressError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BenchSettings", "EvalSet", "ModelSpec", "benchmark", "bench_local", "fixed_feeds", "token_lengths"]

SCHEMA_VERSION = 1
LOCAL = "local"


@dataclass
class BenchSettings:
    """How to measure: shapes, run counts, threads, device; ``clock`` is injectable for tests."""

    batch_sizes: list[int] = field(default_factory=lambda: [1])
    seq_lens: list[int] = field(default_factory=lambda: [128])
    realistic: bool = False  # draw batches from the eval texts (dynamic padding) instead of fixed seq_lens
    realistic_batches: int = 32
    warmup: int = 10
    min_runs: int = 50
    min_seconds: float = 2.0
    rounds: int = 5  # each timed point is measured in this many blocks, alternating between the models
    threads: Threads = field(default_factory=Threads)
    device: str = "cpu"
    max_length: int = 128
    eval_batch_size: int = 32
    seed: int = 0
    session_memory: bool = False  # model files (not PyTorch folders): also measure the session's peak RSS in a fresh process
    clock: Callable[[], float] = time.perf_counter

    def to_dict(self) -> dict[str, Any]:
        return {"batch_sizes": self.batch_sizes, "seq_lens": self.seq_lens, "realistic": self.realistic,
                "warmup": self.warmup, "min_runs": self.min_runs, "min_seconds": self.min_seconds,
                "rounds": self.rounds, "threads": self.threads.to_dict(), "device": self.device, "max_length": self.max_length,
                "session_memory": self.session_memory}


@dataclass
class ModelSpec:
    """A model to measure. ``format`` None: detected from the path."""

    name: str
    path: Path
    format: str | None = None
    precision: str = "fp32"
    role: str = "variant"  # teacher | variant
    shape_source: Path | None = None  # the model folder whose config.json describes it (default: path's own)
    tokenizer: Path | None = None  # its tokenizer folder, when neither its own folder nor the run's default holds it


def file_size_mb(path: Path) -> float:
    """Bytes / 1e6 of the weights: the file (+ ONNX external data beside it) or a folder's weight files."""
    from benchmarks.identity import weight_files

    return sum(p.stat().st_size for p in weight_files(Path(path))) / 1e6


# ------------------------------------------------------------------------------------------ inputs


def realistic_rows(eval_set: EvalSet, batch: int, n_batches: int, seed: int = 0,
                   task: str = "") -> list[tuple[list[str], list[str] | None]]:
    """Batches of real eval texts (and their second segments) drawn with a seeded RNG, as a model of ``task`` is
    called with them (``EvalSet.call_rows``: an embedding model sees each sentence of a pair alone)."""
    import random

    texts, pairs = eval_set.call_rows(task)
    rnd = random.Random(seed)
    idx = list(range(len(texts)))
    out = []
    for _ in range(n_batches):
        rows = [rnd.choice(idx) for _ in range(batch)]
        out.append(([texts[r] for r in rows], [pairs[r] for r in rows] if pairs is not None else None))
    return out


def realistic_feeds(tokenizer: Any, eval_set: EvalSet, batch: int, n_batches: int, max_length: int,
                    seed: int = 0, task: str = "") -> list[dict[str, "np.ndarray"]]:
    """``realistic_rows`` tokenised, each batch padded to its own longest row."""
    return [tokenize_feeds(tokenizer, texts, pairs, max_length)
            for texts, pairs in realistic_rows(eval_set, batch, n_batches, seed, task)]


def call_lengths(tokenizer: Any, eval_set: EvalSet, max_length: int, task: str) -> list[int]:
    """Token lengths of the calls a model of ``task`` gets from ``eval_set`` (for memory probes and devices)."""
    texts, pairs = eval_set.call_rows(task)
    return token_lengths(tokenizer, texts, max_length, pairs)


# ------------------------------------------------------------------------------------------ latency


@dataclass
class Timing:
    """One latency measurement a model owes: the step to time (``step(i)`` runs call i) and the record
    (a point, or the end-to-end entry) its summary is written into as ``latency_ms``."""

    step: Callable[[int], Any]
    batch: int
    record: dict[str, Any]


def latency_timings(runner: Runner, settings: BenchSettings, vocab: int, tokenizer: Any = None,
                    eval_set: EvalSet | None = None) -> list[Timing]:
    """The points of the sweep, per (batch, seq), or per batch in realistic mode, ready to be timed."""
    timings = []
    for b in settings.batch_sizes:
        if settings.realistic:
            if tokenizer is None or eval_set is None or not eval_set.texts:
                raise EdgepressError("realistic mode draws sequence lengths from eval texts: give a tokenizer and data")
            batches = realistic_feeds(tokenizer, eval_set, b, settings.realistic_batches, settings.max_length, settings.seed,
                                      runner.task)
            prepared = [runner.prepare(f) for f in batches]
            mean_seq = sum(f["attention_mask"].shape[1] for f in batches) / len(batches)
            timings.append(Timing(lambda i, p=prepared: runner.run(p[i % len(p)]), b,
                                  {"batch": b, "seq": "realistic", "mean_padded_seq": mean_seq}))
            continue
        for s in settings.seq_lens:
            one = runner.prepare(fixed_feeds(runner.input_names, b, s, vocab, settings.seed))
            timings.append(Timing(lambda i, p=one: runner.run(p), b, {"batch": b, "seq": s}))
    return timings


def end_to_end_timing(runner: Runner, settings: BenchSettings, tokenizer: Any, eval_set: EvalSet) -> Timing:
    """The call an app makes, raw text -> tokenizer -> runtime inputs -> model, at the headline batch on the rows
    the model-only realistic point draws (same seed)."""
    b = settings.batch_sizes[0]
    rows = realistic_rows(eval_set, b, settings.realistic_batches, settings.seed, runner.task)

    def call(i: int) -> Any:
        texts, pairs = rows[i % len(rows)]
        return runner.run(runner.prepare(tokenize_feeds(tokenizer, texts, pairs, settings.max_length)))

    return Timing(call, b, {"batch": b, "tokenizer": type(tokenizer).__name__})


def time_all(timings: list[Timing], settings: BenchSettings) -> dict[int, EdgepressError]:
    """Time every timing in ``settings.rounds`` alternating blocks (``stats.measure_rounds``) and write each
    summary into its record; returns the timings that failed, by index, with their errors."""
    from benchmarks.stats import measure_rounds, summarize

    times, failed = measure_rounds([t.step for t in timings], settings.rounds, settings.warmup, settings.min_runs,
                                   settings.min_seconds, clock=settings.clock, failures=(EdgepressError,))
    for i, (t, durations) in enumerate(zip(timings, times)):
        if i not in failed:
            t.record["latency_ms"] = summarize(durations, t.batch)
    return failed  # type: ignore[return-value]


def _timed(timings: list[Timing], settings: BenchSettings) -> list[dict[str, Any]]:
    failed = time_all(timings, settings)
    if failed:
        raise next(iter(failed.values()))
    return [t.record for t in timings]


def latency_points(runner: Runner, settings: BenchSettings, vocab: int, tokenizer: Any = None,
                   eval_set: EvalSet | None = None) -> list[dict[str, Any]]:
    """Latency per (batch, seq) of the sweep, or per batch in realistic mode, of one model."""
    return _timed(latency_timings(runner, settings, vocab, tokenizer, eval_set), settings)


def end_to_end_latency(runner: Runner, settings: BenchSettings, tokenizer: Any, eval_set: EvalSet) -> dict[str, Any]:
    """``end_to_end_timing`` of one model, timed by the one loop."""
    return _timed([end_to_end_timing(runner, settings, tokenizer, eval_set)], settings)[0]


# ------------------------------------------------------------------------------------------ quality


def predict_all(runner: Runner, tokenizer: Any, texts: list[str], pairs: list[str] | None,
                settings: BenchSettings) -> "np.ndarray":
    """Task outputs for every row, in batches with dynamic padding."""
    import numpy as np

    outs = []
    bs = settings.eval_batch_size
    for i in range(0, len(texts), bs):
        chunk_pairs = pairs[i:i + bs] if pairs is not None else None
        feeds = tokenize_feeds(tokenizer, texts[i:i + bs], chunk_pairs, settings.max_length)
        outs.append(runner.predict(feeds))
    return np.concatenate(outs, axis=0)


def predict_words(runner: Runner, tokenizer: Any, eval_set: EvalSet, settings: BenchSettings) -> "np.ndarray":
    """Token classification: each word's class (its first sub-token's argmax), rows concatenated; -1: truncated.

    Rows are encoded as pre-split words (``is_split_into_words``), batch by batch, so every batch keeps its own
    sequence length.
    """
    import numpy as np

    from benchmarks.feeds import tokenize_words
    from benchmarks.tags import word_argmax

    words = eval_set.words()
    outs: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    bs = settings.eval_batch_size
    for i in range(0, len(words), bs):
        feeds, positions = tokenize_words(tokenizer, words[i:i + bs], settings.max_length)
        outs.extend(word_argmax(runner.predict(feeds), positions))
    return np.concatenate(outs)


def predict_answers(runner: Runner, tokenizer: Any, eval_set: EvalSet, settings: BenchSettings) -> "np.ndarray":
    """Question answering: each question's answer text ('' = no answer; object array) from the start/end logits
    of its context windows (``eval_set.doc_stride``, padded to ``settings.max_length``), run in batches of
    ``settings.eval_batch_size`` windows."""
    import numpy as np

    from benchmarks.feeds import tokenize_windows
    from benchmarks.spans import predicted_answers

    examples = eval_set.qa_examples()
    feeds, windows = tokenize_windows(tokenizer, examples, settings.max_length, eval_set.doc_stride)
    starts, ends = [], []
    bs = settings.eval_batch_size
    for i in range(0, len(windows["example_index"]), bs):
        start, end = runner.predict({k: v[i:i + bs] for k, v in feeds.items()})
        starts.append(start)
        ends.append(end)
    texts = predicted_answers(examples, windows, np.concatenate(starts), np.concatenate(ends),
                              eval_set.max_answer_length, eval_set.null_threshold)
    return np.asarray(texts, dtype=object)


def model_outputs(runner: Runner, tokenizer: Any, eval_set: EvalSet, task: str,
                  settings: BenchSettings) -> dict[str, "np.ndarray"]:
    """What the quality metric needs: embeddings of texts (and pairs), logits/scores, each word's class, or each
    question's answer text."""
    from compress.tasks import task_spec

    kind = task_spec(task).outputs
    if kind == "answers":
        return {"a": predict_answers(runner, tokenizer, eval_set, settings)}
    if kind == "words":
        return {"a": predict_words(runner, tokenizer, eval_set, settings)}
    if kind == "pooled":
        out = {"a": predict_all(runner, tokenizer, eval_set.texts, None, settings)}
        if eval_set.kind(task) == "sts":
            out["b"] = predict_all(runner, tokenizer, eval_set.pairs, None, settings)
        return out
    return {"a": predict_all(runner, tokenizer, eval_set.texts, eval_set.pairs, settings)}


def quality_metrics(task: str, eval_set: EvalSet, outs: dict[str, "np.ndarray"],
                    teacher_outs: dict[str, "np.ndarray"] | None) -> dict[str, Any]:
    """The task metric (name, value) plus the library's other numbers when the rows hold gold, else the task's
    fidelity to the teacher (``compress.tasks.scoring``: the names the quantize guard and distillation use)."""
    from compress.tasks.scoring import fidelity_scores, metric

    got = metric(task, outs, eval_set.gold(task))
    if got is not None:
        return {"metric": got.metric, "value": got.value, "extra": got.extra}
    if teacher_outs is None:
        return {"metric": None, "value": None, "extra": {}, "reason": "no labels and no teacher to compare with"}
    extra = fidelity_scores(task, outs, teacher_outs)
    name = next(iter(extra))
    return {"metric": name, "value": extra[name], "extra": extra}


# ------------------------------------------------------------------------------------------ one model


def _base_entry(spec: ModelSpec, fmt: str, settings: BenchSettings, target: str,
                model_path: Path | None = None) -> dict[str, Any]:
    """A report entry before measuring; size and hash are of ``model_path``, the file located in ``spec.path``."""
    from benchmarks.identity import content_hash, embedding_table_bits, model_shape

    weights = Path(model_path or spec.path)
    exists = weights.exists()
    shape = model_shape(spec.shape_source or spec.path) if exists or spec.shape_source else None
    table_bits = embedding_table_bits(weights) if shape is not None and exists else None
    if table_bits:
        shape["embedding_bits"] = table_bits
    entry = {"name": spec.name, "role": spec.role, "format": fmt, "precision": spec.precision, "path": str(spec.path),
             "target": target, "device": settings.device, "status": "ok", "reason": None,
             "sha256": content_hash(weights) if exists else None,
             "shape": shape,
             "size_mb": round(file_size_mb(weights), 6) if exists else None,
             "latency_ms": None, "throughput": None, "points": [], "cold_start_ms": None, "peak_rss_mb": None,
             "quality": None, "retention": None}
    if weights != Path(spec.path):
        entry["file"] = str(weights)
    return entry


@dataclass
class OpenModel:
    """A model loaded for measuring: its report entry so far, its runner and the latency it still owes."""

    spec: ModelSpec
    entry: dict[str, Any]
    runner: Runner | None = None  # None: skipped, failed, or finished
    tokenizer: Any = None
    vocab: int = 100
    model_path: Path | None = None
    points: list[Timing] = field(default_factory=list)
    end_to_end: Timing | None = None

    @property
    def timings(self) -> list[Timing]:
        return [*self.points, *([self.end_to_end] if self.end_to_end else [])]

    def fail(self, reason: str) -> None:
        """Record the error and let go of the runner (its session's memory with it)."""
        self.entry.update(status="error", reason=reason)
        self.runner = None


def open_local(spec: ModelSpec, task: str, settings: BenchSettings, tokenizer: Any = None,
               eval_set: EvalSet | None = None, pooling: Any = None) -> OpenModel:
    """Load one model on this machine: cold start, runtime, the memory its load took, its timings prepared."""
    from benchmarks.runners import locate, runner_class, skip_reason
    from benchmarks.stats import peak_rss_mb, reset_peak_rss, rss_mb

    found_fmt, model_path = locate(Path(spec.path))
    fmt = spec.format or found_fmt
    entry = _base_entry(spec, fmt, settings, LOCAL, model_path)
    reason = skip_reason(fmt, settings.device)
    if reason:
        entry.update(status="skipped", reason=reason)
        return OpenModel(spec, entry)
    runner: Runner = runner_class(fmt, settings.device)(model_path, task, settings.threads)
    if getattr(runner, "dtype", None) == "float16":  # torch on CUDA computes in fp16 whatever the file holds
        entry["precision"] = "fp16"
    runner.pooling = pooling  # how token outputs become sentence vectors (files without sentence_embedding)
    rss0 = rss_mb()
    reset_peak_rss()
    t0 = settings.clock()
    runner.load()
    vocab = (getattr(tokenizer, "vocab_size", None) or runner.vocab_size or 100) if tokenizer is not None \
        else (runner.vocab_size or 100)
    first = fixed_feeds(runner.input_names, settings.batch_sizes[0], min(settings.seq_lens[0], settings.max_length), vocab)
    runner.run(runner.prepare(first))
    entry["cold_start_ms"] = (settings.clock() - t0) * 1000.0
    entry["runtime"] = runner.describe()
    entry["inputs"] = list(runner.input_names)
    opened = OpenModel(spec, entry, runner, tokenizer, vocab, Path(model_path),
                       latency_timings(runner, settings, vocab, tokenizer, eval_set))
    if settings.realistic and tokenizer is not None and eval_set is not None and eval_set.texts:
        opened.end_to_end = end_to_end_timing(runner, settings, tokenizer, eval_set)
    peak = peak_rss_mb()
    entry["peak_rss_mb"] = peak
    entry["rss_growth_mb"] = (peak - rss0) if peak is not None and rss0 is not None else None
    return opened


def time_models(models: list[OpenModel], settings: BenchSettings) -> None:
    """Every open model's latency, the models' blocks alternating (``time_all``); a model whose run fails is
    marked failed with the reason and leaves the later rounds."""
    owners = [(m, t) for m in models if m.runner is not None for t in m.timings]
    failed = time_all([t for _, t in owners], settings)
    for i, exc in failed.items():
        owners[i][0].fail(str(exc))


def finish_local(opened: OpenModel, task: str, settings: BenchSettings, eval_set: EvalSet | None = None,
                 teacher_outs: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The timed model's entry completed: latency from its timings, session memory (a fresh process), quality;
    its runner is let go. Returns (report entry, raw outputs for fidelity)."""
    entry, runner, spec = opened.entry, opened.runner, opened.spec
    if runner is None:
        return entry, None
    entry["points"] = [t.record for t in opened.points]
    entry["latency_ms"] = entry["points"][0]["latency_ms"]
    entry["throughput"] = entry["latency_ms"]["throughput"]
    if opened.end_to_end is not None:
        entry["end_to_end"] = opened.end_to_end.record
    if settings.session_memory and entry["format"] != "pytorch" and settings.device == "cpu":
        entry["session_memory"] = probe_session_memory(opened.model_path, settings, opened.vocab, opened.tokenizer,
                                                       eval_set, task, entry["format"])
    outs = None
    from compress.tasks import task_spec

    kind = task_spec(task).outputs
    if eval_set is not None and opened.tokenizer is not None and kind != "tokens":  # mlm: latency only
        if kind == "answers":
            eval_set = with_null_threshold(eval_set, spec)
            entry["null_threshold"] = eval_set.null_threshold
        outs = model_outputs(runner, opened.tokenizer, eval_set, task, settings)
        entry["quality"] = quality_metrics(task, eval_set, outs, teacher_outs if spec.role != "teacher" else outs)
        entry["quality"]["rows"] = len(eval_set.texts)
    opened.runner = None
    return entry, outs


def bench_local(spec: ModelSpec, task: str, settings: BenchSettings, tokenizer: Any = None,
                eval_set: EvalSet | None = None, teacher_outs: dict[str, Any] | None = None,
                pooling: Any = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Measure one model on this machine. Returns (report entry, raw outputs for fidelity)."""
    opened = open_local(spec, task, settings, tokenizer, eval_set, pooling)
    if opened.runner is not None:
        failed = time_all(opened.timings, settings)
        if failed:
            raise next(iter(failed.values()))
    return finish_local(opened, task, settings, eval_set, teacher_outs)


def with_null_threshold(eval_set: EvalSet, spec: ModelSpec) -> EvalSet:
    """The eval set read at a QA model's own no-answer threshold: the one saved in the edgepress interface of
    the folder it came from (its source model, its own folder, or its tokenizer's: the teacher's for the Optimum
    baselines), else the eval set's (run_qa's default, 0)."""
    from dataclasses import replace

    from compress.model.interface import saved_interface

    for folder in (spec.shape_source, spec.path, spec.tokenizer):
        iface = None if folder is None else saved_interface(folder)
        if iface is not None and iface.null_threshold is not None:
            return replace(eval_set, null_threshold=iface.null_threshold)
    return eval_set


def probe_session_memory(model_path: Path, settings: BenchSettings, vocab: int, tokenizer: Any,
                         eval_set: EvalSet | None, task: str = "", fmt: str | None = None) -> dict[str, Any]:
    """The session's peak memory in a fresh process that opens the file with the runner of its format (``fmt``),
    at the bench's batch sizes and (realistic) lengths."""
    from benchmarks.memory import session_memory

    lengths = None
    if settings.realistic and tokenizer is not None and eval_set is not None and eval_set.texts:
        lengths = call_lengths(tokenizer, eval_set, settings.max_length, task)
    return session_memory(model_path, settings, vocab, lengths, fmt, task or "embedding")


def _error_entry(spec: ModelSpec, settings: BenchSettings, exc: EdgepressError) -> dict[str, Any]:
    """The entry of a model that failed to load or run: status 'error' and the reason."""
    from benchmarks.runners import detect_format

    fmt = spec.format or "unknown"
    try:
        fmt = spec.format or detect_format(Path(spec.path))
    except EdgepressError:
        pass
    entry = _base_entry(spec, fmt, settings, LOCAL)
    entry.update(status="error", reason=str(exc))
    return entry


def safe_open(spec: ModelSpec, task: str, settings: BenchSettings, **kw: Any) -> OpenModel:
    """open_local, but a model that fails to load becomes an entry with status 'error' and the reason."""
    try:
        return open_local(spec, task, settings, **kw)
    except EdgepressError as exc:
        return OpenModel(spec, _error_entry(spec, settings, exc))


def safe_finish(opened: OpenModel, task: str, settings: BenchSettings, **kw: Any) -> tuple[dict[str, Any], Any]:
    """finish_local, but a model whose quality pass fails becomes an entry with status 'error' and the reason."""
    try:
        return finish_local(opened, task, settings, **kw)
    except EdgepressError as exc:
        opened.runner = None
        return _error_entry(opened.spec, settings, exc), None


def add_retention(entries: list[dict[str, Any]]) -> None:
    """retention = entry's primary metric / the teacher's same metric (teacher: 1.0)."""
    from benchmarks.metrics import retention
    from compress.tasks.scoring import is_fidelity

    teacher = next((e for e in entries if e["role"] == "teacher" and e.get("quality")), None)
    for e in entries:
        q = e.get("quality")
        if not q or q.get("value") is None:
            continue
        if teacher is None:
            e["retention"] = None
        elif is_fidelity(q["metric"]):
            e["retention"] = retention(q["value"], 1.0)  # the teacher agrees with itself perfectly
        elif teacher["quality"]["metric"] == q["metric"]:
            e["retention"] = retention(q["value"], teacher["quality"]["value"])


# ------------------------------------------------------------------------------------------ many models


def has_tokenizer(folder: Path) -> bool:
    """Whether a folder holds tokenizer files (tokenizer.json / tokenizer_config.json / vocab.txt)."""
    return Path(folder).is_dir() and any((Path(folder) / f).is_file()
                                          for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))


def benchmark(models: list[ModelSpec], task: str, settings: BenchSettings, tokenizer_path: str | None = None,
              eval_set: EvalSet | None = None, targets: list[str] | None = None,
              remote_options: Any = None, progress: Callable[[str], None] | None = None,
              pooling: Any = None) -> dict[str, Any]:
    """Measure every model locally (teacher first, for fidelity) and on each remote target; return report.json data.

    Tokenizer per model: ``spec.tokenizer``, else a folder's own, else ``tokenizer_path``.
    """
    from benchmarks.device import local_device_info
    from compress.model.loading import load_tokenizer

    cache: dict[str, Any] = {}

    def tokenizer_for(path: str | None) -> Any:
        if path is None:
            return None
        if path not in cache:
            cache[path] = load_tokenizer(path)
        return cache[path]

    default_tok = tokenizer_for(str(tokenizer_path)) if tokenizer_path is not None else None
    ordered = sorted(models, key=lambda m: m.role != "teacher")
    entries: list[dict[str, Any]] = []
    teacher_outs = None
    with torch_threads_restored():
        opened = []
        for spec in ordered:
            if progress:
                progress(f"loading {spec.name} ({spec.path})")
            if spec.tokenizer is not None:
                tok = tokenizer_for(str(spec.tokenizer))
            else:
                tok = tokenizer_for(str(spec.path)) if has_tokenizer(Path(spec.path)) else default_tok
            opened.append(safe_open(spec, task, settings, tokenizer=tok, eval_set=eval_set, pooling=pooling))
        live = [m for m in opened if m.runner is not None]
        if progress and live:
            progress(f"timing {len(live)} model(s) in {settings.rounds} alternating round(s)")
        time_models(live, settings)
        for m in opened:
            if progress and m.runner is not None:
                progress(f"scoring {m.spec.name}")
            entry, outs = safe_finish(m, task, settings, eval_set=eval_set, teacher_outs=teacher_outs)
            if m.spec.role == "teacher" and outs is not None:
                teacher_outs = outs
            entries.append(entry)
    add_retention(entries)
    devices = {LOCAL: local_device_info()}
    for target in targets or []:
        from benchmarks.remote import bench_remote

        lengths = None
        if settings.realistic and default_tok is not None and eval_set is not None:
            lengths = call_lengths(default_tok, eval_set, settings.max_length, task)
        vocab = getattr(default_tok, "vocab_size", None) or 100
        for local in list(entries):
            if local["target"] != LOCAL or local["role"] == "teacher":
                continue
            if progress:
                progress(f"measuring {local['name']} on {target}")
            remote_entry, device = bench_remote(target, local, settings, vocab, lengths, remote_options)
            if device:
                devices.setdefault(remote_entry["target"], device)
            entries.append(remote_entry)
    return make_report(task, settings, entries, devices, eval_set)


def make_report(task: str, settings: BenchSettings, entries: list[dict[str, Any]], devices: dict[str, Any],
                eval_set: EvalSet | None) -> dict[str, Any]:
    """Assemble the report.json structure (schema: benchmarks/report.schema.json)."""
    import benchmarks

    from benchmarks.identity import shape_label

    teacher = next((e["name"] for e in entries if e["role"] == "teacher"), None)
    teacher_shape = next((e.get("shape") for e in entries if e["role"] == "teacher"), None)
    for e in entries:
        e["label"] = shape_label(e.get("shape"), teacher_shape, e.get("precision"))
    metric = next((e["quality"]["metric"] for e in entries if e.get("quality") and e["quality"].get("metric")), None)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": f"edgepress {benchmarks.tool_version()}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "teacher": teacher,
        "data": None if eval_set is None else {"source": eval_set.source, "rows": len(eval_set.texts),
                                               "kind": eval_set.kind(task), "metric": metric},
        "settings": settings.to_dict(),
        "devices": devices,
        "models": entries,
    }
