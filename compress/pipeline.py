"""The orchestrator: runs the configured stages in order, each into runs/<name>/NN-stage/.

A stage's directory is complete only when its ``stage.json`` exists; it is built in a
temporary sibling and renamed into place, so a killed run never leaves a half stage that
looks finished. A stage whose recorded hash matches the current config is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compress.config import RunConfig, dump_config
from compress.distributed import is_main_process, rank
from compress.runinfo import machine_info, package_versions
from compress.stages import StageInputs, StageRecord, Variant, get_stage

log = logging.getLogger("edgepress")

STAGE_FILE = "stage.json"


def stage_dir_name(index: int, name: str) -> str:
    return f"{index:02d}-{name}"


def stage_hash(cfg: RunConfig, name: str, upstream_hash: str) -> str:
    """Hash of the stage's config sections chained with the previous stage's hash."""
    spec = get_stage(name)
    own = cfg.section_hash(spec.sections, spec.unused)
    return hashlib.sha256(f"{name}:{own}:{upstream_hash}".encode()).hexdigest()[:16]


def read_record(stage_dir: Path) -> tuple[StageRecord, dict] | None:
    """Read a finished stage; None if its stage.json is absent or unreadable."""
    path = stage_dir / STAGE_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    rec = StageRecord(meta["stage"], stage_dir, meta.get("outputs", {}), meta.get("metrics", {}),
                      [Variant(**v) for v in meta.get("variants", [])])
    return rec, meta


# Stages whose work is shared by every rank of a torchrun/accelerate launch (Trainer-based).
MULTI_PROCESS_STAGES = {"finetune", "distill", "prune"}


def _barrier() -> None:
    """Wait for every rank when a process group exists (multi-process launch), else no-op."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@dataclass
class StageOutcome:
    name: str
    dir: Path
    status: str  # ran | skipped
    wall_s: float
    metrics: dict


def run_pipeline(cfg: RunConfig, force: set[str] | None = None,
                 on_stage: Callable[[str, str], None] | None = None,
                 seed: tuple[list[StageRecord], str] | None = None) -> list[StageOutcome]:
    """Run (or resume) every stage in ``cfg.stages``; returns what ran and what was reused.

    ``seed`` (finished records, their last hash) makes this a branch of another run: its stages see
    those records as upstream, and their hashes chain from it (used by the ``search`` stage).
    """
    force = set(force or ())
    for name in force:
        if name not in cfg.stages:
            get_stage(name)  # unknown name -> error with suggestion
            from compress.errors import EdgepressError

            raise EdgepressError(f"--force {name}: '{name}' is not in this config's stages ({', '.join(cfg.stages)})")
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        dump_config(cfg, run_dir / "config.resolved.yaml")
    inputs = StageInputs(run_dir=run_dir, upstream=list(seed[0]) if seed else [])
    outcomes: list[StageOutcome] = []
    upstream_hash = seed[1] if seed else ""
    redo_rest = False
    for i, name in enumerate(cfg.stages, 1):
        spec = get_stage(name)
        h = stage_hash(cfg, name, upstream_hash)
        final = run_dir / stage_dir_name(i, name)
        existing = read_record(final)
        if existing and existing[1].get("config_hash") == h and name not in force and not redo_rest:
            rec, meta = existing
            outcomes.append(StageOutcome(name, final, "skipped", meta.get("wall_s", 0.0), rec.metrics))
            if on_stage:
                on_stage(name, "skipped")
        elif not is_main_process() and name not in MULTI_PROCESS_STAGES:
            _barrier()  # rank 0 runs it alone; the others wait, then read its record
            found = read_record(final)
            rec = found[0] if found else StageRecord(name, final, {}, {}, [])
            outcomes.append(StageOutcome(name, final, "ran-on-rank-0", 0.0, rec.metrics))
        else:
            redo_rest = True  # later stages consume this one's new output
            if on_stage:
                on_stage(name, "running")
            rec, wall = _run_one(cfg, spec, i, h, inputs, final)
            _barrier()
            if not is_main_process():  # rank 0 wrote the artifacts; use its record
                found = read_record(final)
                rec = found[0] if found else rec
            outcomes.append(StageOutcome(name, final, "ran", wall, rec.metrics))
            if on_stage:
                on_stage(name, "done")
        inputs.upstream.append(rec)
        upstream_hash = h
    return outcomes


def _run_one(cfg: RunConfig, spec, index: int, h: str, inputs: StageInputs, final: Path) -> tuple[StageRecord, float]:
    main = is_main_process()
    tmp = final.parent / (f".{final.name}.tmp" if main else f".{final.name}.tmp.rank{rank()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    fn = spec.load()
    t0 = time.perf_counter()
    try:
        result = fn(cfg, inputs, tmp)
    except KeyboardInterrupt:
        from compress.errors import RunInterrupted

        raise RunInterrupted(f"during stage '{spec.name}' ({final}): the stages finished before it are kept; "
                             "run the same command again to resume") from None
    wall = time.perf_counter() - t0
    if not main:  # other ranks helped train; rank 0 owns the artifacts
        shutil.rmtree(tmp, ignore_errors=True)
        return StageRecord(spec.name, final, result.outputs, result.metrics, result.variants), wall
    meta = {
        "stage": spec.name,
        "index": index,
        "config_hash": h,
        "sections": {k: cfg.model_dump(mode="json")[k] for k in spec.sections},
        "inputs": [str(r.dir.name) for r in inputs.upstream],
        "outputs": result.outputs,
        "variants": [v.to_dict() for v in result.variants],
        "metrics": result.metrics,
        "wall_s": round(wall, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
        "machine": machine_info(),
    }
    (tmp / STAGE_FILE).write_text(json.dumps(meta, indent=2, default=str))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    rec = StageRecord(spec.name, final, result.outputs, result.metrics, result.variants)
    return rec, wall


def run_standalone(cfg: RunConfig, name: str, out_dir: Path, upstream_outputs: dict[str, Path],
                   overwrite: bool = False) -> StageRecord:
    """Run one stage outside a pipeline: ``upstream_outputs`` stands in for earlier stages' outputs."""
    from compress.errors import EdgepressError

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise EdgepressError(f"output directory '{out_dir}' exists and is not empty; pass --overwrite or choose another")
    fake = StageRecord("input", Path("/"), {k: str(Path(v).resolve()) for k, v in upstream_outputs.items()}, {}, [])
    for key, path in upstream_outputs.items():
        if key in ("model", "onnx"):
            fmt = "pytorch" if key == "model" else "onnx"
            fake.variants.append(Variant("input", fmt, str(Path(path).resolve())))
    inputs = StageInputs(run_dir=out_dir.parent / f".{out_dir.name}.work", upstream=[fake])
    spec = get_stage(name)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    rec, _ = _run_one(cfg, spec, 1, stage_hash(cfg, name, "standalone"), inputs, out_dir)
    return rec
