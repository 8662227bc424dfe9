"""Faults while a run is written, through the real entry point (``compress.cli.main.main``): links planted in a run
folder, a full disk, read-only folders, a held run lock, legacy and malicious ``pytorch_model.bin`` files.

Each case asserts: the exit code (1 for these faults), a message of at most 3 lines naming the file, no
traceback, no file outside the run folder changed (a canary's bytes and mtime), and nothing newly finished
(the ``stage.json`` and ``final/package.json`` files are the ones there before). SIGTERM is exercised in
separate processes (``test_fault_signals.py``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from compress.cli.main import main
from tests.cli_errors import expect_one_line_error
from tests.tiny import make_tiny_model

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class World:
    """A tiny teacher, a finished run (distill -> export -> final/) and weight files in legacy torch format."""

    root: Path
    tiny: Path
    run: Path  # runs/t of a finished run

    def config(self, case: Path, output_dir: Path | None = None, extra: str = "") -> str:
        path = case / "c.yaml"
        path.write_text(run_yaml(self.tiny, output_dir or case / "runs", extra))
        return str(path)


def run_yaml(teacher: Path, output_dir: Path, extra: str = "") -> str:
    return (f"name: t\noutput_dir: {output_dir}\nstages: [distill, export]\nteacher: {{model: '{teacher}'}}\n"
            "data: {train: 'builtin:pydoc', max_train_samples: 32}\nstudent: {num_layers: 1}\n"
            f"distill: {{max_steps: 1, batch_size: 8}}\nexport: {{formats: [onnx]}}\n{extra}")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    import torch
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("faults")
    tiny = make_tiny_model(root / "tiny", "bert", "mlm")
    (root / "c.yaml").write_text(run_yaml(tiny, root / "runs"))
    main(["run", str(root / "c.yaml")])  # returns normally: exit 0
    run = root / "runs" / "t"
    assert (run / "final" / "package.json").is_file()
    state = load_file(str(tiny / "model.safetensors"))

    class Payload:  # what a pickle-only checkpoint may carry: code that runs when unpickled
        def __reduce__(self):
            return (print, ("unpickled",))

    for name, obj in (("legacy", state), ("legacy-pickle", {**state, "extra": Payload()})):
        folder = root / name
        shutil.copytree(tiny, folder)
        (folder / "model.safetensors").unlink()
        torch.save(obj, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    shutil.copytree(root / "legacy", root / "legacy-truncated")
    raw = (root / "legacy" / "pytorch_model.bin").read_bytes()
    (root / "legacy-truncated" / "pytorch_model.bin").write_bytes(raw[: len(raw) // 2])
    return World(root, tiny, run)


@dataclass
class Case:
    """One case's folder: a copy of the finished run on demand, a canary outside it, mounts undone at the end."""

    world: World
    dir: Path
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def outside(self) -> Path:
        return self.dir / "outside"

    @property
    def canary(self) -> Path:
        return self.outside / "canary.txt"

    def finished_run(self, where: Path | None = None) -> Path:
        """A copy of the finished run (mtimes kept, so `run` and package see it as up to date)."""
        dst = (where or self.dir / "runs") / "t"
        shutil.copytree(self.world.run, dst, symlinks=True)
        return dst

    def link(self, path: Path, target: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)

    def read_only(self, path: Path) -> None:
        """Make ``path`` read-only for this process: a read-only bind mount as root (root ignores modes)."""
        if IS_ROOT:
            for args in (["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,bind,ro", str(path)]):
                res = subprocess.run(args, capture_output=True, text=True)
                if res.returncode:
                    pytest.skip(f"a read-only bind mount is needed as root: {' '.join(args)}: {res.stderr.strip()}")
                if args[1] == "--bind":
                    self.cleanups.append(lambda p=path: subprocess.run(["umount", "-l", str(p)], check=False))
        else:
            path.chmod(0o555)
            self.cleanups.append(lambda p=path: p.chmod(0o755))

    def small_disk(self, path: Path, size_kb: int, free_kb: int, before: Callable[[Path], None] | None = None) -> Path:
        """A tmpfs of ``size_kb`` at ``path`` (``before`` fills it with what must fit), then a filler leaving about
        ``free_kb`` free. Needs root to mount; skipped with the reason otherwise."""
        if not IS_ROOT:
            pytest.skip("disk-full cases mount a small tmpfs, which needs root (CI runs them as root)")
        path.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                             capture_output=True, text=True)
        if res.returncode:
            pytest.skip(f"mount -t tmpfs failed: {res.stderr.strip()}")
        self.cleanups.append(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
        if before is not None:
            before(path)
        fill(path, free_kb * 1024)
        return path

    def hold_lock(self, lock: Path) -> int:
        """Another process holding ``lock`` as a running edgepress does (flock + 'pid host time'); its pid."""
        code = ("import fcntl, os, socket, sys, time\n"
                f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT, 0o644)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                "os.ftruncate(fd, 0); os.pwrite(fd, f'{os.getpid()} {socket.gethostname()} 2026-01-01T00:00:00\\n'.encode(), 0)\n"
                "print('held', flush=True)\nsys.stdin.read()\n")
        lock.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"

        def release() -> None:
            proc.stdin.close()
            proc.wait(timeout=30)

        self.cleanups.append(release)
        return proc.pid


def fill(path: Path, leave: int) -> None:
    """Write a filler file under ``path`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(path).free
    with open(path / "filler.bin", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def _finished(folder: Path) -> dict[str, int]:
    """Files that mark something finished: each stage.json and final/package.json, with their mtimes."""
    marks = [p for p in folder.rglob("stage.json")] + [p for p in folder.rglob("package.json")]
    return {str(p): p.stat().st_mtime_ns for p in marks if p.is_file()}


# -------------------------------------------------------------------------------------------- the cases
# (id, argv(world, case) -> list[str], exit code, needles (str or callable(case) -> str) in the message)
R, P = "run", "package"


def _export_out(c: Case) -> Path:
    return c.dir / "out"


def _lock_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / ".lock", c.canary)
    return [R, c.world.config(c.dir)]


def _resolved_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "config.resolved.yaml", c.canary)
    return [R, c.world.config(c.dir)]


def _log_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "log.txt", c.canary)
    return [R, c.world.config(c.dir)]


def _splits_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "data" / "splits.json", c.canary)
    return [R, c.world.config(c.dir)]


def _data_dir_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "data", c.outside / "dir")
    return [R, c.world.config(c.dir)]


def _model_file_link(c: Case) -> list[str]:
    run = c.finished_run()
    shutil.copy(run / "01-distill" / "model" / "vocab.txt", c.outside / "vocab.txt")
    c.link(run / "01-distill" / "model" / "vocab.txt", c.outside / "vocab.txt")
    return [P, str(run)]


def _model_dir_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "01-distill" / "model" / "extra", c.outside / "dir")
    return [P, str(run)]


def _dangling_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "01-distill" / "model" / "notes.txt", c.outside / "gone.txt")
    return [P, str(run)]


def _onnx_link(c: Case) -> list[str]:
    run = c.finished_run()
    shutil.copy2(run / "02-export" / "model.onnx", c.outside / "model.onnx")
    c.link(run / "02-export" / "model.onnx", c.outside / "model.onnx")
    return [P, str(run)]


def _stage_dir_link(c: Case) -> list[str]:
    run = c.finished_run()
    shutil.copytree(run / "02-export", c.outside / "export-copy")
    c.link(run / "02-export", c.outside / "export-copy")
    return [R, c.world.config(c.dir), "--force", "export"]


def _stage_tmp_link_then_final_link(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / ".final.tmp", c.outside / "dir")  # edgepress's own temp name: removed, never followed
    c.link(run / "final", c.outside / "dir")
    return [P, str(run)]


def _standalone_lock_link(c: Case) -> list[str]:
    c.link(c.dir / ".out.lock", c.canary)
    return ["export", str(c.world.tiny), str(_export_out(c))]


def _standalone_log_link(c: Case) -> list[str]:
    c.link(c.dir / ".out.log.txt", c.canary)
    return ["export", str(c.world.tiny), str(_export_out(c))]


def _overwrite_out_link(c: Case) -> list[str]:
    c.link(_export_out(c), c.outside / "dir")
    return ["export", str(c.world.tiny), str(_export_out(c)), "--overwrite"]


def _final_link_run(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "final", c.outside / "dir")
    return [R, c.world.config(c.dir)]


def _final_link_package(c: Case) -> list[str]:
    run = c.finished_run()
    c.link(run / "final", c.outside / "dir")
    return [P, str(run)]


def _ro_run(c: Case) -> list[str]:
    run = c.finished_run()
    c.read_only(run)
    return [R, c.world.config(c.dir)]


def _ro_package(c: Case) -> list[str]:
    run = c.finished_run()
    c.read_only(run)
    return [P, str(run)]


def _ro_output_parent(c: Case) -> list[str]:
    (c.dir / "ro").mkdir()
    c.read_only(c.dir / "ro")
    return [R, c.world.config(c.dir, output_dir=c.dir / "ro" / "runs")]


def _ro_distill_parent(c: Case) -> list[str]:
    (c.dir / "ro").mkdir()
    c.read_only(c.dir / "ro")
    return ["distill", str(c.world.tiny), str(c.dir / "ro" / "out")]


def _ro_stage_dir(c: Case) -> list[str]:
    run = c.finished_run()
    c.read_only(run / "02-export")
    return [R, c.world.config(c.dir), "--force", "export"]


def _ro_final(c: Case) -> list[str]:
    run = c.finished_run()
    c.read_only(run / "final")
    return [P, str(run)]


def _locked_package(c: Case) -> list[str]:
    run = c.finished_run()
    c.pid = c.hold_lock(run / ".lock")
    return [P, str(run)]


def _locked_run(c: Case) -> list[str]:
    run = c.finished_run()
    c.pid = c.hold_lock(run / ".lock")
    return [R, c.world.config(c.dir), "--force", "export"]


def _locked_export(c: Case) -> list[str]:
    c.pid = c.hold_lock(c.dir / ".out.lock")
    return ["export", str(c.world.tiny), str(_export_out(c))]


def _full_distill(c: Case) -> list[str]:
    disk = c.small_disk(c.dir / "disk", 4096, 24)
    return ["distill", str(c.world.tiny), str(disk / "out"), "--layers", "1", "--set", "distill.max_steps=1",
            "--set", "data.max_train_samples=32"]


def _full_export(c: Case) -> list[str]:
    disk = c.small_disk(c.dir / "disk", 4096, 48)
    return ["export", str(c.world.tiny), str(disk / "out"), "--set", "export.formats=[onnx]"]


def _full_package(c: Case) -> list[str]:
    c.small_disk(c.dir / "disk", 32768, 160, before=lambda d: c.finished_run(d))
    return [P, str(c.dir / "disk" / "t")]


def _full_bench(c: Case) -> list[str]:
    disk = c.small_disk(c.dir / "disk", 4096, 4)
    return ["bench", "run", str(c.world.tiny), "--seq", "8", "--warmup", "0", "--min-runs", "1", "--min-seconds", "0",
            "--out", str(disk / "bench")]


def _legacy_pickle_export(c: Case) -> list[str]:
    return ["export", str(c.world.root / "legacy-pickle"), str(_export_out(c))]


def _legacy_pickle_run(c: Case) -> list[str]:
    cfg = c.dir / "c.yaml"
    cfg.write_text(run_yaml(c.world.root / "legacy-pickle", c.dir / "runs"))
    return [R, str(cfg)]


def _legacy_truncated(c: Case) -> list[str]:
    return ["export", str(c.world.root / "legacy-truncated"), str(_export_out(c))]


def _legacy_truncated_distill(c: Case) -> list[str]:
    return ["distill", str(c.world.root / "legacy-truncated"), str(_export_out(c))]


CASES: list = [
    # item 2: links planted in a run folder are refused, never written through
    ("run-lock-is-link", _lock_link, 1, (".lock", "symbolic link", "canary.txt")),
    ("run-resolved-config-is-link", _resolved_link, 1, ("config.resolved.yaml", "symbolic link")),
    ("run-log-is-link", _log_link, 1, ("log.txt", "symbolic link")),
    ("run-data-artifact-is-link", _splits_link, 1, ("data/splits.json", "symbolic link", "canary.txt")),
    ("run-data-folder-is-link", _data_dir_link, 1, ("runs/t/data", "symbolic link")),
    ("package-model-file-links-out", _model_file_link, 1, ("01-distill/model/vocab.txt", "outside")),
    ("package-model-dir-links-out", _model_dir_link, 1, ("01-distill/model/extra", "outside")),
    ("package-dangling-link", _dangling_link, 1, ("notes.txt", "to nothing")),
    ("package-onnx-links-out", _onnx_link, 1, ("02-export/model.onnx", "outside")),
    ("run-stage-folder-is-link", _stage_dir_link, 1, ("02-export", "symbolic link")),
    ("package-final-and-temp-are-links", _stage_tmp_link_then_final_link, 1, ("final", "symbolic link")),
    ("export-out-lock-is-link", _standalone_lock_link, 1, (".out.lock", "symbolic link")),
    ("export-out-log-is-link", _standalone_log_link, 1, (".out.log.txt", "symbolic link")),
    ("export-overwrite-out-is-link", _overwrite_out_link, 1, ("out", "symbolic link")),
    # item 6: read-only or unwritable folders, a final that is a link
    ("run-final-is-link", _final_link_run, 1, ("final", "symbolic link")),
    ("package-final-is-link", _final_link_package, 1, ("final", "symbolic link")),
    ("run-folder-read-only", _ro_run, 1, ("runs/t", "not writable")),
    ("package-folder-read-only", _ro_package, 1, ("runs/t", "not writable")),
    ("run-output-parent-read-only", _ro_output_parent, 1, ("ro/runs", "not writable")),
    ("distill-out-parent-read-only", _ro_distill_parent, 1, ("/ro", "not writable")),
    ("run-stage-folder-read-only", _ro_stage_dir, 1, ("02-export", "cannot write")),
    ("package-final-read-only", _ro_final, 1, ("final", "cannot write")),
    # item 7: one writer per run folder, package included
    ("package-while-run-holds-lock", _locked_package, 1, ("in use by process", ".lock")),
    ("run-while-locked", _locked_run, 1, ("in use by process", ".lock")),
    ("export-while-out-locked", _locked_export, 1, ("in use by process", ".out.lock")),
    # item 4: a full disk (small tmpfs, root only)
    ("distill-disk-full", _full_distill, 1, ("no space left on device while writing", "/disk/", "MB free")),
    ("export-disk-full", _full_export, 1, ("no space left on device while writing", "/disk/", "MB free")),
    ("package-disk-full", _full_package, 1, ("no space left on device while writing", "disk/t/final", "needs about")),
    ("bench-report-disk-full", _full_bench, 1, ("no space left on device while writing", "/disk/bench")),
    # item 8: legacy-format pytorch_model.bin
    ("export-legacy-pickle", _legacy_pickle_export, 1, ("legacy-pickle/pytorch_model.bin", "needs full unpickling",
                                                         "refused")),
    ("run-legacy-pickle-teacher", _legacy_pickle_run, 1, ("legacy-pickle/pytorch_model.bin", "needs full unpickling")),
    ("export-legacy-truncated", _legacy_truncated, 1, ("legacy-truncated/pytorch_model.bin", "truncated or damaged")),
    ("distill-legacy-truncated", _legacy_truncated_distill, 1, ("legacy-truncated/pytorch_model.bin",
                                                                "truncated or damaged")),
]


def _id(case) -> str:
    return case[0]


def test_fault_matrix_has_at_least_20_cases_over_every_item():
    assert len(CASES) >= 20 and len({_id(c) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,setup,code,needles", CASES, ids=[_id(c) for c in CASES])
def test_fault(world, tmp_path, capsys, case_id, setup, code, needles):
    case = Case(world, tmp_path)
    case.outside.mkdir()
    case.canary.write_bytes(b"not edgepress's\n" * 64)
    (case.outside / "dir").mkdir()
    (case.outside / "dir" / "keep.txt").write_text("keep\n")
    try:
        args = setup(case)
        canary = _snapshot(case.outside)
        finished = _finished(tmp_path)
        capsys.readouterr()
        _, text = expect_one_line_error(capsys, args, code, needles, case_id, starts=("error:",))
        if hasattr(case, "pid"):  # a held lock: the message names the holder
            assert f"process {case.pid} on host" in text, text
        assert _snapshot(case.outside) == canary  # nothing outside the run folder changed
        assert _finished(tmp_path) == finished  # nothing new looks finished, nothing finished was rewritten
        assert not [p for p in tmp_path.rglob("*.part")], "a temporary file was left"
    finally:
        for undo in reversed(case.cleanups):
            undo()


# -------------------------------------------------------------------------------------- beyond the matrix

def test_valid_legacy_pytorch_model_bin_is_accepted(world, tmp_path):
    """Item 8: a pre-zip torch.save file that holds only tensors is checked (no mmap) and exported."""
    main(["export", str(world.root / "legacy"), str(tmp_path / "out"), "--set", "export.formats=[onnx]"])
    assert (tmp_path / "out" / "model.onnx").stat().st_size > 10_000
    assert (tmp_path / "out" / "stage.json").is_file()


def test_own_temp_folder_that_is_a_link_is_removed_not_followed(world, tmp_path, capsys):
    """A link at `.NN-stage.tmp` (edgepress's own temp name) is unlinked; its target keeps its files."""
    case = Case(world, tmp_path)
    run = case.finished_run()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    case.link(run / ".02-export.tmp", target)
    main(["run", world.config(tmp_path), "--force", "export"])
    assert (target / "keep.txt").read_text() == "keep\n" and sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert (run / "02-export" / "stage.json").is_file() and not (run / ".02-export.tmp").exists()


def test_run_replaces_nothing_outside_and_reports_copies_atomically(tmp_path):
    """fsio.write_text/copy_file: whole-or-nothing writes that refuse a link at the target."""
    from compress.core.errors import Unwritable
    from compress.core.fsio import copy_file, write_text

    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (tmp_path / "link.txt").symlink_to(outside)
    with pytest.raises(Unwritable, match="link.txt' is a symbolic link"):
        write_text(tmp_path / "link.txt", "x")
    with pytest.raises(Unwritable, match="link.txt' is a symbolic link"):
        copy_file(outside, tmp_path / "link.txt")
    assert outside.read_text() == "keep\n"
    write_text(tmp_path / "plain.txt", "one")
    copy_file(tmp_path / "plain.txt", tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "one" and not list(tmp_path.glob("*.part"))


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs whose free space is then used up but 8 KB (root only)."""
    if not IS_ROOT:
        pytest.skip("disk-full tests mount a small tmpfs, which needs root (CI runs them as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1024k", "tmpfs", str(disk)], capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"mount -t tmpfs failed: {res.stderr.strip()}")
    try:
        fill(disk, 8 * 1024)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_library_write_errors_on_a_full_disk_become_one_line(full_disk):
    """torch's inline_container RuntimeError, safetensors' SafetensorError and shutil.Error's list all read as
    'no space left on device while writing <path>'."""
    import torch
    from safetensors.torch import save_file

    from compress.core.errors import DiskFull
    from compress.core.fsio import writing

    big = {"w": torch.zeros(64_000)}
    src = full_disk.parent / "src"
    src.mkdir()
    (src / "blob.bin").write_bytes(os.urandom(100_000))
    writes = {"a.pt": lambda p: torch.save(big, p), "b.safetensors": lambda p: save_file(big, str(p)),
              "tree": lambda p: shutil.copytree(src, p)}
    for name, write in writes.items():
        with pytest.raises(DiskFull) as exc:
            with writing(full_disk / name):
                write(full_disk / name)
        msg = str(exc.value)
        assert msg.startswith("no space left on device while writing '") and str(full_disk) in msg, msg
        assert "MB free" in msg and "\n" not in msg
        shutil.rmtree(full_disk / name, ignore_errors=True) if (full_disk / name).is_dir() else \
            (full_disk / name).unlink(missing_ok=True)


def test_disk_full_during_a_trainer_checkpoint_then_resume(world, tmp_path, capsys):
    """The Trainer's checkpoint write fails on a full disk: one line naming the checkpoint file, the stage not
    finished; with space freed, the same command finishes the stage."""
    case = Case(world, tmp_path)
    try:
        runs = case.small_disk(tmp_path / "disk", 8192, 8192)  # fill below leaves it empty until the run starts
        (runs / "filler.bin").unlink()
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: t\noutput_dir: {runs}\nstages: [distill]\nteacher: {{model: '{world.tiny}'}}\n"
                       "data: {train: 'builtin:pydoc', max_train_samples: 64}\nstudent: {num_layers: 1}\n"
                       "distill: {max_steps: 40, batch_size: 8}\n")
        import json

        main(["run", str(cfg), "--set", "distill.max_steps=1"])  # the data artifact and caches, once
        stage = runs / "t" / "01-distill" / "stage.json"
        assert json.loads(stage.read_text())["metrics"]["steps"] == 1
        fill(runs, 60 * 1024)  # less than a checkpoint of the student (weights + Adam state)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["run", str(cfg)])
        err = capsys.readouterr().err
        assert exc.value.code == 1, err[-2000:]
        assert "Traceback" not in err and "no space left on device while writing" in err, err
        assert f"{runs}/t/.checkpoints/distill-" in err and "/checkpoint-10/" in err, err  # the Trainer's save
        assert json.loads(stage.read_text())["metrics"]["steps"] == 1  # the earlier finished stage, untouched
        assert not (runs / "t" / ".01-distill.tmp").exists()  # the unfinished one gave its space back
        (runs / "filler.bin").unlink()
        main(["run", str(cfg)])
        assert json.loads(stage.read_text())["metrics"]["steps"] == 40
    finally:
        for undo in reversed(case.cleanups):
            undo()


def test_sigterm_handler_is_restored_after_main(world, tmp_path, capsys):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_lock_file_names_the_holder(world, tmp_path):
    case = Case(world, tmp_path)
    try:
        pid = case.hold_lock(tmp_path / "x.lock")
        text = (tmp_path / "x.lock").read_text().split()
        assert text[0] == str(pid) and text[1] == socket.gethostname()
    finally:
        for undo in reversed(case.cleanups):
            undo()
