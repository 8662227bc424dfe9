"""The bench layer's public API for other stages (search) and the facade: settings, specs and eval rows from a run.

Everything here is what ``benchmarks/stage.py`` and ``compress/search/stage.py`` both need, so neither reaches
into the other's internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.evalset import EvalSet
from benchmarks.harness import BenchSettings, ModelSpec
from benchmarks.runners.base import Threads, available_cores
from compress.run.stages import StageInputs, teacher_source

if TYPE_CHECKING:
    from benchmarks.config import BenchConfig
    from compress.config import RunConfig
    from compress.data.artifact import RunData

__all__ = ["eval_set_for", "model_specs", "remote_options", "settings_from_config"]


def settings_from_config(bench: "BenchConfig", max_length: int, seed: int) -> BenchSettings:
    """BenchSettings for the stage (and the CLI's config path) from the bench section."""
    batches = [bench.batch_size] + [b for b in bench.sweep_batch_sizes if b != bench.batch_size]
    return BenchSettings(batch_sizes=batches, seq_lens=list(bench.seq_lens), realistic=bench.realistic,
                         warmup=bench.warmup, min_runs=bench.min_runs, min_seconds=bench.min_seconds,
                         rounds=bench.rounds,
                         threads=Threads(bench.threads or available_cores(), bench.inter_threads), device=bench.device,
                         max_length=max_length, seed=seed, session_memory=bench.session_memory)


def remote_options(bench: "BenchConfig") -> Any:
    """RemoteOptions from the bench section."""
    from benchmarks.remote import RemoteOptions

    return RemoteOptions(known_hosts=bench.known_hosts, host_key=bench.host_key, identity=bench.ssh_identity,
                         python=bench.remote_python, remote_dir=bench.remote_dir)


def eval_set_for(cfg: "RunConfig", data: "RunData", split: str = "test", label_names: list[str] | None = None,
                 cap_field: str = "bench.max_eval_samples") -> EvalSet:
    """The ``split`` (test or eval) of the run's data artifact ``data``, capped at bench.max_eval_samples (labels as
    the task reads them: class ids, STS scores, tags, answers). A cut is announced in one line naming ``cap_field``,
    the setting the cap came from.
    """
    from compress.data.split import announce_cut

    rows = getattr(data.splits(), split)
    eval_set = EvalSet.from_text_data(rows.head(cfg.bench.max_eval_samples))
    announce_cut(split, len(eval_set), len(rows), cap_field)
    if label_names is not None:  # token classification: the model's tag of each class id
        eval_set.label_names = list(label_names)
    return eval_set


def model_specs(cfg: "RunConfig", inputs: StageInputs) -> list[ModelSpec]:
    """The teacher (PyTorch fp32) first, then every upstream variant."""
    from compress.model.loading import resolve_model_path

    specs = [ModelSpec("teacher", Path(resolve_model_path(teacher_source(cfg, inputs))), "pytorch", "fp32", "teacher")]
    model_dir = None  # the PyTorch model each stage's variants come from: its config.json says their shape
    for rec in inputs.upstream:
        for key in ("model", "winner_model"):  # search's winner ships its PyTorch weights as winner_model
            if key in rec.outputs:
                model_dir = rec.path(key)
        for variant in rec.variants:
            specs.append(ModelSpec(variant.name, rec.dir / variant.path, variant.format, variant.precision,
                                   shape_source=model_dir))
    return distinct_names(specs)


def distinct_names(specs: list[ModelSpec]) -> list[ModelSpec]:
    """Specs whose names repeat (distill's PyTorch ``student`` and export's ONNX ``student``) renamed NAME-FORMAT
    (NAME-2, NAME-3 when that still repeats), so every report row and stage metric names one model."""
    import collections
    import dataclasses

    counts, seen = collections.Counter(s.name for s in specs), collections.Counter()
    out = []
    for s in specs:
        name = f"{s.name}-{s.format}" if counts[s.name] > 1 and s.format else s.name
        seen[name] += 1
        name = f"{name}-{seen[name]}" if seen[name] > 1 else name
        out.append(s if name == s.name else dataclasses.replace(s, name=name))
    return out


