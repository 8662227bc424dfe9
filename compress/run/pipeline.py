"""The orchestrator: runs the configured stages in order, each into runs/<name>/NN-stage/.

A stage's directory is complete only when its ``stage.json`` exists; it is built in a
temporary sibling and renamed into place, so a killed run never leaves a half stage that
looks finished. A stage whose recorded hash matches the current config is skipped. The stage
list is the config's plus the registered stages that ``follow`` one of them (the package stage
after a run that exports); a stage's declared outputs are checked when it returns, and those it
``publish``es get their copy in the run folder before its folder is put in place.

One process at a time owns a run folder: ``runs/<name>/.lock`` is held with ``fcntl.flock``
(the OS drops it when the holder dies, so a lock left by a killed run is taken over with a
note). While the run goes, third-party log lines and warnings go to ``runs/<name>/log.txt``;
a stage's Trainer checkpoints are removed once it finished (``keep_checkpoints`` keeps them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from compress.config import RunConfig
from compress.core.console import capture_logs, note, stage_context
from compress.core.distributed import is_main_process, rank
from compress.core.errors import DiskFull, EdgepressError, RunLocked
from compress.run.runinfo import machine_info, package_versions
from compress.run.stages import (STAGE_FILE, StageInputs, StageRecord, get_stage, read_record, stage_view,
                             with_followers)

if TYPE_CHECKING:
    from compress.data.artifact import RunData

log = logging.getLogger("edgepress")

def stage_dir_name(index: int, name: str) -> str:
    return f"{index:02d}-{name}"


def stage_hash(cfg: RunConfig, name: str, upstream_hash: str, data_digest: str = "") -> str:
    """Hash of the stage's config sections chained with the previous stage's hash, and for a stage that reads
    data, the digest of the run's data artifact (so an edited data file redoes it)."""
    spec = get_stage(name)
    own = cfg.section_hash(spec.sections, spec.unused)
    data = f":{data_digest}" if data_digest and "data" in spec.sections else ""
    return hashlib.sha256(f"{name}:{own}:{upstream_hash}{data}".encode()).hexdigest()[:16]


def split_data_once(cfg: RunConfig, run_dir: Path, teacher: Path | None = None,
                    stages: list[str] | None = None, parent: "RunData | None" = None) -> "RunData | None":
    """The run's data artifact (compress.data.artifact), written when a stage reads data (None when none does); a
    branch whose data, task and seed are its parent run's takes the parent's (``parent``) instead of splitting again."""
    if not any("data" in get_stage(name).sections for name in (cfg.stages if stages is None else stages)):
        return None
    from compress.data.artifact import config_digest
    from compress.run.stages import head_labels

    if parent is not None and parent.meta.get("config") == config_digest(cfg.data, cfg.task, cfg.seed):
        return parent
    return make_data(cfg, run_dir, head_labels(cfg, teacher))


def make_data(cfg: RunConfig, run_dir: Path, labels: dict) -> "RunData":
    """The data artifact of ``run_dir``: the first rank writes it; the others of a multi-process launch (no process
    group to wait on yet) make the same split in memory."""
    from compress.data.artifact import split_in_memory, write_plan
    from compress.run.stages import data_cache_dir

    make = write_plan if is_main_process() else split_in_memory
    return make(cfg.data, cfg.task, cfg.seed, run_dir, data_cache_dir(cfg, run_dir), labels)


def stage_inputs(cfg: RunConfig, run_dir: Path, upstream: list[StageRecord] | None = None,
                 given: dict[str, Path] | None = None) -> StageInputs:
    """Inputs of a stage called outside a pipeline (``run_standalone``, or its ``run_stage`` called directly):
    ``upstream`` records or ``given`` files, and a data artifact split into ``run_dir`` at the first read of rows."""
    inputs = StageInputs(run_dir=Path(run_dir), upstream=list(upstream or []),
                         given={k: Path(v).resolve() for k, v in (given or {}).items()})
    inputs.data_source = lambda: standalone_data(cfg, inputs)
    return inputs


def standalone_data(cfg: RunConfig, inputs: StageInputs) -> "RunData":
    """The data artifact of a stage run on its own, in its work folder: class names map to the ids of the model it
    was given (else of the head the configured teacher has or a fine-tune makes)."""
    from compress.run.stages import head_labels, own_model, teacher_labels

    labels = teacher_labels(cfg, inputs) if own_model(inputs) is not None else head_labels(cfg)
    return make_data(cfg, inputs.run_dir, labels)


LOCK_FILE = ".lock"
LOG_FILE = "log.txt"
_HELD: dict[str, int] = {}  # lock paths this process holds -> nesting depth (a stage may nest runs)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


@contextlib.contextmanager
def folder_lock(lock_path: Path, folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` for ``folder``; refuse (RunLocked) when another process has it.

    The file holds ``pid host start-time`` of the holder, for the message. A lock whose holder died is free at
    the OS level already (flock dies with its process); finding a holder line in it means a stale lock, which
    is taken over with a one-line note.
    """
    import fcntl

    key = str(lock_path.resolve())
    if key in _HELD:  # this process already owns it (a nested pipeline on the same folder)
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    from compress.core.fsio import open_no_follow

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_no_follow(lock_path, os.O_RDWR | os.O_CREAT, what="lock file")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").split()
            who = (f"process {holder[0]} on host {holder[1]}" if len(holder) >= 2 else "another process")
            raise RunLocked(f"run folder '{folder}' is in use by {who} (lock file {lock_path}); wait for that run to "
                            f"finish, or stop it (kill {holder[0] if holder else 'PID'}) and run again") from None
        previous = os.pread(fd, 512, 0).decode("utf-8", "replace").split()
        if len(previous) >= 2:
            pid, host = previous[0], previous[1]
            state = ("no longer running" if host != socket.gethostname() or not pid.isdigit()
                     or not _pid_alive(int(pid)) else "not holding it")
            note(f"taking over the lock of '{folder}' left by process {pid} on {host} ({state})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)  # an empty lock file: released cleanly
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def ensure_output_dir(path: Path, what: str) -> None:
    """Create ``path`` (a folder) or fail in one line: a file on the way, or no permission to write there."""
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                where = "is a file" if parent == path else f"is under '{parent}', which is a file"
                raise EdgepressError(f"{what} '{path}' {where}, not a folder; choose another output folder")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        probe.unlink()
    except OSError as exc:
        raise EdgepressError(f"{what} '{path}' is not writable ({exc.strerror or exc}); choose another output folder "
                             "or fix its permissions") from None


def preflight(cfg: RunConfig, stages: list[str]) -> None:
    """Checks that need no stage to run: local teacher/student folders load and fit ``teacher.max_length``."""
    from compress.model.checks import check_max_length, read_model_config
    from compress.model.loading import resolve_model_path

    if not any(stage_loads_teacher(cfg, s) for s in stages):
        return
    for field, spec in (("teacher.model", cfg.teacher.model), ("student.model", cfg.student.model)):
        if not spec or (field == "student.model" and not any("student" in get_stage(s).sections for s in stages)):
            continue
        path = Path(resolve_model_path(spec))  # refuses files, damaged weights, folders without config.json
        if path.is_dir():  # a hub name stays unchecked here (no network before a stage needs it)
            check_max_length(read_model_config(path), cfg.teacher.max_length, spec)


def stage_loads_teacher(cfg: RunConfig, name: str) -> bool:
    """Whether stage ``name`` loads teacher.model under ``cfg`` (its spec's ``loads_teacher``, else: whenever
    "teacher" is among its sections)."""
    spec = get_stage(name)
    return "teacher" in spec.sections and spec.call("loads_teacher", cfg) is not False


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
                 seed: tuple[list[StageRecord], str] | None = None,
                 data: "RunData | None" = None) -> list[StageOutcome]:
    """Run (or resume) every stage in ``cfg.stages``; returns what ran and what was reused.

    ``seed`` (finished records, their last hash) makes this a branch of another run: its stages see
    those records as upstream, and their hashes chain from it (a stage running branches, through compress.api);
    ``data`` is the parent run's data artifact, which the branch reads when its data section is the parent's.
    """
    force = set(force or ())
    stages = list(cfg.stages) if seed is not None else with_followers(list(cfg.stages))  # branches ship nothing
    for name in force:
        if name not in stages:
            get_stage(name)  # unknown name -> error with suggestion
            raise EdgepressError(f"--force {name}: '{name}' is not in this config's stages ({', '.join(stages)})")
    run_dir = cfg.run_dir
    if seed is None:  # a branch starts from its parent's finished stages
        from compress.run.stages import check_stage_order

        check_stage_order(cfg, stages)
    preflight(cfg, stages)  # a refused config or teacher leaves no run folder behind
    ensure_output_dir(run_dir, "output folder (output_dir/name)")
    lock = folder_lock(run_dir / LOCK_FILE, run_dir) if is_main_process() else contextlib.nullcontext()
    preload = tuple(m for name in stages for m in get_stage(name).call("preload", cfg) or ())
    from compress.data.files import active_sources, reading_sources
    from compress.data.artifact import SOURCES_DIR, SPLITS_DIR

    # a source a stage reads itself (vocab.corpus) is copied at its first read; later reads, search branches' too,
    # take the copy
    sources = reading_sources(run_dir / SPLITS_DIR / SOURCES_DIR) if active_sources() is None \
        else contextlib.nullcontext()
    with lock, capture_logs(run_dir / (LOG_FILE if is_main_process() else f"log.rank{rank()}.txt"), preload=preload), \
            sources:
        return _run_stages(cfg, stages, run_dir, force, on_stage, seed, data)


def _run_stages(cfg: RunConfig, stages: list[str], run_dir: Path, force: set[str],
                on_stage: Callable[[str, str], None] | None,
                seed: tuple[list[StageRecord], str] | None, parent_data: "RunData | None") -> list[StageOutcome]:
    if is_main_process():
        import yaml

        from compress.core.fsio import write_text

        # whole or not at all, and never through a link planted at that name
        write_text(run_dir / "config.resolved.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
                   what="resolved config")
    upstream = list(seed[0]) if seed else []
    tuned = StageInputs(run_dir, upstream).latest("teacher")  # a branch's head: the teacher tuned upstream
    run_data = split_data_once(cfg, run_dir, tuned, stages, parent_data)
    inputs = StageInputs(run_dir=run_dir, upstream=upstream, data_source=run_data)
    outcomes: list[StageOutcome] = []
    upstream_hash = seed[1] if seed else ""
    data_digest = run_data.digest if run_data is not None else ""
    redo_rest = False
    for i, name in enumerate(stages, 1):
        spec = get_stage(name)
        h = stage_hash(cfg, name, upstream_hash, data_digest)
        final = run_dir / stage_dir_name(i, name)
        existing = read_record(final)
        if existing and existing[1].get("config_hash") == h and name not in force and not redo_rest:
            rec, meta = existing
            if is_main_process():
                publish(spec, rec, run_dir)  # a deleted copy comes back; an unchanged one is left as it is
            outcomes.append(StageOutcome(name, final, "skipped", meta.get("wall_s", 0.0), rec.metrics))
            if on_stage:
                on_stage(name, "skipped")
        elif not is_main_process() and not spec.multi_rank:
            _barrier()  # rank 0 runs it alone; the others wait, then read its record
            found = read_record(final)
            rec = found[0] if found else StageRecord(name, final, {}, {}, [])
            outcomes.append(StageOutcome(name, final, "ran-on-rank-0", 0.0, rec.metrics))
        else:
            redo_rest = True  # later stages consume this one's new output
            if on_stage:
                on_stage(name, "running")
            rec, wall = _run_one(cfg, spec, i, h, inputs, final, publish_to=run_dir)
            _barrier()
            if is_main_process() and not cfg.keep_checkpoints:
                from compress.run.checkpoints import remove_stage_checkpoints

                remove_stage_checkpoints(cfg, name, run_dir)
            if not is_main_process():  # rank 0 wrote the artifacts; use its record
                found = read_record(final)
                rec = found[0] if found else rec
            outcomes.append(StageOutcome(name, final, "ran", wall, rec.metrics))
            if on_stage:
                on_stage(name, "done")
        inputs.upstream.append(rec)
        upstream_hash = h
    return outcomes


def published_path(rec: StageRecord, key: str, run_dir: Path) -> tuple[Path, Path] | None:
    """(the stage's output, its name in the run folder) for a published output ``key``; None when not written."""
    if key not in rec.outputs:
        return None
    src = rec.dir / rec.outputs[key]
    return src, Path(run_dir) / src.name


def publish(spec, rec: StageRecord, run_dir: Path, tmp_dir: Path | None = None) -> list[Path]:
    """Give the run folder its copy of each output ``spec.publish`` names (a report file, the ``final/``
    folder): a file is copied, a folder hard-linked file by file into a temporary sibling that is renamed into
    place. ``tmp_dir`` reads the outputs from a stage folder not yet renamed into place. A copy whose bytes are
    already the stage's is left alone (a resumed run rewrites nothing)."""
    from compress.core.fsio import copy_file, link_tree, refuse_symlink, replace_dir

    done = []
    for key in spec.publish:
        found = published_path(rec, key, run_dir)
        if found is None:
            continue
        src, dst = found
        if tmp_dir is not None:
            src = tmp_dir / rec.outputs[key]
        refuse_symlink(dst, f"run folder's copy of {spec.name}'s '{key}'")
        if src.is_dir():
            marker = next((p.relative_to(src) for p in sorted(src.rglob("*")) if p.is_file()), None)
            if marker is not None and (dst / marker).is_file() and os.path.samefile(src / marker, dst / marker):
                continue
            tmp = dst.parent / f".{dst.name}.tmp"
            link_tree(src, tmp)
            replace_dir(tmp, dst, f"{dst.name} folder")
            done.append(dst)
        elif src.is_file():
            done.append(copy_file(src, dst, what=f"the run folder's copy of {spec.name}'s '{key}'"))
    return done


def check_provides(spec, outputs: dict[str, str]) -> None:
    """A stage returned exactly the output keys it declares (``provides``, plus the ``optional`` ones it wrote):
    a missing key breaks the stages after it, an extra one is a contract later stages cannot see coming."""
    missing = sorted(set(spec.provides) - set(outputs))
    extra = sorted(set(outputs) - set(spec.provides) - set(spec.optional))
    if missing or extra:
        from compress.run.stages import StageContractError

        raise StageContractError(
            f"internal error: stage '{spec.name}' returned outputs {sorted(outputs)}, but compress/run/stages.py declares "
            f"provides={list(spec.provides)} optional={list(spec.optional)}"
            + (f"; missing {missing}" if missing else "") + (f"; undeclared {extra}" if extra else ""))


def _run_one(cfg: RunConfig, spec, index: int, h: str, inputs: StageInputs, final: Path,
             publish_to: Path | None = None) -> tuple[StageRecord, float]:
    from compress.core.fsio import refuse_symlink, remove_own, replace_dir, write_text, writing

    refuse_symlink(final, f"stage folder of '{spec.name}'")  # before any work: it could not be put in place
    main = is_main_process()
    tmp = final.parent / (f".{final.name}.tmp" if main else f".{final.name}.tmp.rank{rank()}")
    with writing(tmp):
        remove_own(tmp)  # left by an interrupted run (a link there is removed, not followed)
        tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        with stage_context(spec.name):
            fn = spec.load()  # importing a stage's libraries is part of it (an interrupt there names it too)
            result = fn(stage_view(cfg, spec), inputs, tmp)  # only the sections its hash covers
    except KeyboardInterrupt:
        from compress.core.errors import RunInterrupted

        raise RunInterrupted(f"during stage '{spec.name}' ({final}): the stages finished before it are kept; "
                             "run the same command again to resume") from None
    except DiskFull:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)  # give the space back: the rerun starts this stage over
        raise
    except EdgepressError as exc:
        from compress.core.fsio import is_disk_full

        if is_disk_full(exc):  # a stage's own error wrapping a full disk (e.g. "torch.onnx.export failed: ...")
            _raise_write_failure(exc, spec.name, tmp, inputs.run_dir)
        raise
    except Exception as exc:  # noqa: BLE001 - a full disk or a read-only folder, however the library words it
        _raise_write_failure(exc, spec.name, tmp, inputs.run_dir)
        raise
    wall = time.perf_counter() - t0
    try:
        check_provides(spec, result.outputs)
    except EdgepressError:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
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
    write_text(tmp / STAGE_FILE, json.dumps(meta, indent=2, default=str))
    rec = StageRecord(spec.name, final, result.outputs, result.metrics, result.variants)
    if publish_to is not None:  # before the stage folder is in place: a refused copy leaves the stage unfinished
        try:
            publish(spec, rec, publish_to, tmp_dir=tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    replace_dir(tmp, final, f"stage folder of '{spec.name}'")
    return rec, wall


def _raise_write_failure(exc: BaseException, stage: str, tmp: Path, run_dir: Path) -> None:
    """Re-raise a stage's failed write (full disk, read-only folder) as one line naming the file being written.

    Libraries report the file only sometimes (torch's writer never does): otherwise it is the newest file in the
    stage's folder or its Trainer checkpoints. The stage's unfinished folder is removed on a full disk, to give
    back the space; its checkpoints stay, and a damaged last one is discarded on the next run.
    """
    from compress.run.stages import CHECKPOINTS_DIR
    from compress.core.fsio import filename_in, translate

    newest = _newest_file([tmp, run_dir / CHECKPOINTS_DIR]) or tmp
    mapped = translate(exc, newest)
    if mapped is None:
        return
    named = filename_in(exc)
    ours = [tmp.parent.resolve(), Path(run_dir).resolve()]
    if not isinstance(mapped, DiskFull) and named and not any(o in Path(named).resolve().parents for o in ours):
        return  # a permission problem with an input file: not a write of this stage
    if isinstance(mapped, DiskFull) and is_main_process():
        shutil.rmtree(tmp, ignore_errors=True)
    raise type(mapped)(f"stage '{stage}': {mapped}") from None


def _newest_file(folders: list[Path]) -> Path | None:
    """The most recently modified file under ``folders`` (links not followed)."""
    best: tuple[int, Path] | None = None
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in folder.rglob("*"):
            try:
                st = p.lstat()
            except OSError:
                continue
            if not p.is_symlink() and p.is_file() and (best is None or st.st_mtime_ns > best[0]):
                best = (st.st_mtime_ns, p)
    return best[1] if best else None


def run_standalone(cfg: RunConfig, name: str, out_dir: Path, upstream_outputs: dict[str, Path],
                   overwrite: bool = False) -> StageRecord:
    """Run one stage outside a pipeline: ``upstream_outputs`` stands in for earlier stages' outputs."""
    get_stage(name)  # an unknown stage name fails before any folder is made
    out_dir = Path(out_dir)
    if out_dir.is_file():
        raise EdgepressError(f"output directory '{out_dir}' is a file, not a folder; choose another output folder")
    ensure_output_dir(out_dir.parent, "output directory's parent")
    lock = folder_lock(out_dir.parent / f".{out_dir.name}.lock", out_dir) if is_main_process() else contextlib.nullcontext()
    with lock:
        return _run_standalone(cfg, name, out_dir, upstream_outputs, overwrite)


def _run_standalone(cfg: RunConfig, name: str, out_dir: Path, upstream_outputs: dict[str, Path],
                    overwrite: bool) -> StageRecord:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise EdgepressError(f"output directory '{out_dir}' exists and is not empty; pass --overwrite or choose another")
    preflight(cfg, [name])
    # the data is split at the stage's first read of rows (an export that calibrates on none: never)
    inputs = stage_inputs(cfg, out_dir.parent / f".{out_dir.name}.work", given=upstream_outputs)
    spec = get_stage(name)
    work = inputs.run_dir
    log_path = out_dir.parent / f".{out_dir.name}.log.txt"
    with capture_logs(log_path):
        rec, _ = _run_one(cfg, spec, 1, stage_hash(cfg, name, "standalone"), inputs, out_dir)
    if is_main_process():
        shutil.move(str(log_path), str(out_dir / LOG_FILE))
        from compress.core.fsio import remove_own
        from compress.data.artifact import SPLITS_DIR

        remove_own(work / SPLITS_DIR)  # the rows it read: the stage's own data artifact
        if not cfg.keep_checkpoints:
            from compress.run.checkpoints import remove_stage_checkpoints

            remove_stage_checkpoints(cfg, name, work)
            with contextlib.suppress(OSError):
                work.rmdir()  # the work folder held only checkpoints and rows
    return rec


def records_of(run_dir: Path) -> list[tuple[StageRecord, dict]]:
    """The finished stages of a run folder (records and their stage.json), in order."""
    found = []
    for d in sorted(p for p in Path(run_dir).iterdir() if p.is_dir() and p.name[:2].isdigit() and "-" in p.name):
        rec = read_record(d)
        if rec is not None:
            found.append(rec)
    return found


def rerun_stage(run_dir: Path, name: str) -> StageOutcome:
    """Run stage ``name`` again on a finished run folder, from its resolved config and the finished stages before
    it, with the hash a pipeline run gives it (``edgepress package RUN_DIR``), so a later run skips it."""
    from compress.config import load_config

    spec = get_stage(name)
    run_dir = Path(run_dir)
    resolved = run_dir / "config.resolved.yaml"
    if not run_dir.is_dir() or not resolved.is_file():
        raise EdgepressError(f"'{run_dir}' is not a run folder (no config.resolved.yaml); give runs/<name> of a "
                             "finished `edgepress run`")
    ensure_output_dir(run_dir, "run folder")
    with folder_lock(run_dir / LOCK_FILE, run_dir):  # the lock `edgepress run` takes: one writer per run folder
        cfg = load_config(resolved)
        stages = with_followers(list(cfg.stages))
        if name not in stages:
            raise EdgepressError(f"run folder '{run_dir}' has no '{name}' stage (its stages: {', '.join(stages)})")
        index = stages.index(name) + 1
        before = [(rec, meta) for rec, meta in records_of(run_dir) if int(rec.dir.name[:2]) < index]
        if not before:
            raise EdgepressError(f"run folder '{run_dir}' has no finished stage (no NN-stage/stage.json); run it "
                                 "first")
        from compress.data.artifact import read_plan

        run_data = read_plan(run_dir) if "data" in spec.sections else None
        digest = run_data.digest if run_data is not None else ""
        h = stage_hash(cfg, name, str(before[-1][1].get("config_hash", "")), digest)
        inputs = StageInputs(run_dir=run_dir, upstream=[rec for rec, _ in before], data_source=run_data)
        final = run_dir / stage_dir_name(index, name)
        rec, wall = _run_one(cfg, spec, index, h, inputs, final, publish_to=run_dir)
        return StageOutcome(name, final, "ran", wall, rec.metrics)
