"""Trainer checkpoints: validated before a resume, discarded when damaged, removed once their stage finished.

A run killed while the Trainer writes ``checkpoint-N/`` (or a disk that filled up) leaves files that do not
load; resuming from them fails the same way on every re-run. ``resumable_checkpoint`` opens every file the
Trainer would read — weights through ``safetensors.safe_open``, ``.pt/.pth`` only through
``torch.load(weights_only=True)`` (never a full unpickle), ``trainer_state.json`` as JSON — and falls back to
the previous good checkpoint, or to training from scratch, saying which in one line.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from compress.core.console import note
from compress.run.stages import CHECKPOINTS_DIR

if TYPE_CHECKING:
    from compress.config import RunConfig

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR + step
# training_args.bin is a pickled TrainingArguments written for reference; resuming never reads it
_NOT_READ_ON_RESUME = {"training_args.bin"}
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")


def _numpy_safe_globals():
    """What Trainer's rng_state.pth holds besides tensors (numpy's RNG state), allowed for weights_only loads."""
    import numpy as np
    import torch

    np_core = getattr(np, "_core", None) or np.core
    allow = [np_core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    ctx = getattr(torch.serialization, "safe_globals", None)
    if ctx is not None:
        return ctx(allow)
    torch.serialization.add_safe_globals(allow)  # torch 2.4: no context manager, only the global allowlist
    return contextlib.nullcontext()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from (one short phrase naming the file), or None when every file loads."""
    import torch
    from safetensors import safe_open

    state = folder / "trainer_state.json"
    if not state.is_file():
        return "trainer_state.json is missing"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"trainer_state.json does not parse ({_first_line(exc)})"
    if not any((folder / w).is_file() for w in _WEIGHTS):
        return "no model weights"
    for path in sorted(folder.iterdir()):
        if path.name in _NOT_READ_ON_RESUME:
            continue
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as fh:
                    fh.keys()
            elif path.suffix in (".pt", ".pth", ".bin"):
                with _numpy_safe_globals():
                    torch.load(str(path), map_location="cpu", weights_only=True)
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 - zip, pickle, safetensors and JSON errors all mean "damaged"
            return f"{path.name} does not load: {_first_line(exc)}"
    return None


def _checkpoints(folder: Path) -> list[Path]:
    """checkpoint-N folders, newest (highest step) first — the order get_last_checkpoint prefers."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def resumable_checkpoint(folder: Path | str, delete: bool | None = None) -> str | None:
    """The newest checkpoint under ``folder`` whose files all load, or None (train from scratch).

    Each damaged one is reported in one line and (on the main process, or when ``delete``) removed, so the
    next run does not trip over it again.
    """
    from compress.core.distributed import is_main_process

    delete = is_main_process() if delete is None else delete
    candidates = _checkpoints(Path(folder))
    for i, ckpt in enumerate(candidates):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return str(ckpt)
        rest = [c for c in candidates[i + 1:] if checkpoint_problem(c) is None]
        then = f"resuming from the previous one, {rest[0].name}" if rest else "training starts from scratch"
        note(f"checkpoint '{ckpt}' is damaged ({problem}); discarded it, {then}")
        if delete:
            shutil.rmtree(ckpt, ignore_errors=True)
    return None


def stage_checkpoint_dirs(cfg: "RunConfig", stage: str, run_dir: Path) -> list[Path]:
    """``.checkpoints/<stage>-<hash>`` folders a stage of this config writes (finetune and distill name them so)."""
    from compress.run.registry import get_stage

    spec = get_stage(stage)
    hashes = {cfg.section_hash(spec.sections), cfg.section_hash(spec.sections, spec.unused)}
    return [run_dir / CHECKPOINTS_DIR / f"{stage}-{h}" for h in sorted(hashes)]


def remove_stage_checkpoints(cfg: "RunConfig", stage: str, run_dir: Path) -> list[Path]:
    """Delete the finished stage's checkpoints (and ``.checkpoints/`` once empty); returns what was removed."""
    removed = []
    for path in stage_checkpoint_dirs(cfg, stage, run_dir):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    root = run_dir / CHECKPOINTS_DIR
    with contextlib.suppress(OSError):
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
    return removed
