"""Writing into run folders safely: no write follows a symlink it did not create, and a full disk or an
unwritable folder ends in one line naming the path, not in a library's internal error.

* ``write_text`` / ``copy_file`` write a fresh temporary file (``O_EXCL``) beside the target and
  ``os.replace`` it, so a reader never sees half a file and a link at the target is never written through;
  a target that is a symlink is refused, naming where it points.
* ``open_no_follow`` opens files written in place (the run lock, log.txt) with ``O_NOFOLLOW``.
* ``copy_tree`` copies a folder without following links out of it (``package``: nothing from outside the
  run ends up in ``final/``).
* ``writing(path)`` turns ENOSPC/EDQUOT — raised as ``OSError``, as torch's ``inline_container`` RuntimeError,
  as safetensors' ``SafetensorError`` or as a ``shutil.Error`` list — into ``DiskFull``, and EACCES/EROFS into
  ``Unwritable``; ``check_free_space`` refuses a write whose size is known before it starts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from compress.core.errors import DiskFull, EdgepressError, Unwritable

MB = 1e6
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
# how libraries that write through their own I/O layer say "the write failed" without an errno
_FULL_TEXTS = ("No space left on device", "os error 28", "Errno 28", "Disk quota exceeded", "os error 122")
_WRITE_FAILED_TEXTS = ("inline_container", "unexpected pos", "PytorchStreamWriter failed", "file write failed")
_NEARLY_FULL = 1 << 20  # bytes: a torch write failure with less than this left is taken as a full disk


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent); None when unknown."""
    for p in [Path(path), *Path(path).parents]:
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def is_disk_full(exc: BaseException, where: Path | None = None) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or the quota is full."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        text = str(e)
        if any(t in text for t in _FULL_TEXTS):
            return True
        if isinstance(e, RuntimeError) and any(t in text for t in _WRITE_FAILED_TEXTS) and where is not None:
            free = free_bytes(where)  # torch's writer drops the errno: judge by what is left on that disk
            if free is not None and free < _NEARLY_FULL:
                return True
    return False


def unwritable_error(exc: BaseException) -> OSError | None:
    """The permission / read-only error in ``exc``'s chain, if that is what it is."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _UNWRITABLE_ERRNOS:
            return e
    return None


def filename_in(exc: BaseException) -> str | None:
    """The destination path a failed write names, when the error carries one."""
    for e in _chain(exc):
        if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
            first = e.args[0][0]
            if isinstance(first, tuple) and len(first) == 3:
                return str(first[1])
        if isinstance(e, OSError):
            name = e.filename2 or e.filename
            if name:
                return os.fsdecode(name)
    return None


def _mb(n: float) -> str:
    return f"{n / MB:.1f}" if n < 10 * MB else f"{n / MB:.0f}"


def disk_full_message(path: Path | str, needs: int | None = None) -> str:
    free = free_bytes(Path(path))
    parts = [f"needs about {_mb(needs)} MB"] if needs else []
    if free is not None:
        parts.append(f"{_mb(free)} MB free")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return (f"no space left on device while writing '{path}'{detail}; free some space (or set output_dir to a "
            "bigger disk) and run the same command again to resume")


def unwritable_message(path: Path | str, err: OSError) -> str:
    return (f"cannot write '{path}' ({err.strerror or err}); make that folder writable or choose another output "
            "folder, then run the same command again")


def translate(exc: BaseException, path: Path | str, needs: int | None = None) -> EdgepressError | None:
    """The one-line error for a write of ``path`` that failed with ``exc``; None when it is neither a full disk
    nor a permission problem. A file name carried by the error wins over ``path``."""
    named = filename_in(exc)
    if not named or not os.path.isabs(named):  # rmtree and friends name files relative to a folder's fd
        named = str(path)
    if is_disk_full(exc, Path(named)):
        return DiskFull(disk_full_message(named, needs))
    err = unwritable_error(exc)
    if err is not None:
        return Unwritable(unwritable_message(named, err))
    return None


@contextlib.contextmanager
def writing(path: Path | str, needs: int | None = None) -> Iterator[None]:
    """Around a write of ``path``: a full disk or an unwritable folder becomes one line naming it."""
    try:
        yield
    except EdgepressError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, RuntimeError, SafetensorError, shutil.Error
        mapped = translate(exc, path, needs)
        if mapped is None:
            raise
        raise mapped from None


def check_free_space(path: Path | str, needs: int) -> None:
    """Refuse a write of about ``needs`` bytes under ``path`` when the disk has less free (with 5 % to spare)."""
    free = free_bytes(Path(path))
    if free is not None and needs > 0 and free < needs * 1.05:
        raise DiskFull(disk_full_message(path, needs))


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# ----------------------------------------------------------------------------------------- links

def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def refuse_symlink(path: Path | str, what: str = "") -> None:
    """Fail in one line when ``path`` is a symbolic link: edgepress does not write through links it did not make."""
    path = Path(path)
    if path.is_symlink():
        label = f"{what} " if what else ""
        raise Unwritable(f"{label}'{path}' is a symbolic link (to '{_link_target(path)}'); edgepress does not write "
                         "through links it did not create: remove the link and run the same command again")


def remove_own(path: Path) -> None:
    """Remove a temporary path edgepress names itself (``.NN-stage.tmp``, ``.final.tmp``): a link is unlinked,
    never followed; a folder is deleted."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def open_no_follow(path: Path | str, flags: int, mode: int = 0o644, what: str = "") -> int:
    """``os.open`` that refuses a symlink at the last component (``O_NOFOLLOW``), naming it; also translates a
    read-only or full disk."""
    path = Path(path)
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            refuse_symlink(path, what)
        mapped = translate(exc, path)
        if mapped is not None:
            raise mapped from None
        raise


def _temp_beside(path: Path) -> tuple[int, Path]:
    for i in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}.{i}.part"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), tmp
        except FileExistsError:
            continue
    raise EdgepressError(f"could not create a temporary file beside '{path}'; remove the stale .part files there")


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A fresh temp file beside ``path`` to fill (handle, its path); renamed over ``path`` when the block ends,
    removed when it fails, so ``path`` is written whole or not at all."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path: Path | str, data: bytes, what: str = "") -> Path:
    """Write ``path`` whole or not at all (temp file + ``os.replace``), refusing a symlink at ``path``."""
    path = Path(path)
    refuse_symlink(path, what)
    with writing(path, needs=len(data)), _replacing(path) as (fh, _):
        fh.write(data)
    return path


def write_text(path: Path | str, text: str, what: str = "", encoding: str = "utf-8") -> Path:
    """``write_bytes`` for text."""
    return write_bytes(path, text.encode(encoding), what)


def copy_file(src: Path | str, dst: Path | str, what: str = "") -> Path:
    """Copy ``src`` to ``dst`` (whole or not at all, mode and times kept), refusing a symlink at ``dst``."""
    src, dst = Path(src), Path(dst)
    refuse_symlink(dst, what)
    size = src.stat().st_size
    with writing(dst, needs=size):
        check_free_space(dst.parent, size)
        with _replacing(dst) as (fout, tmp), open(src, "rb") as fin:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            shutil.copystat(src, tmp)
    return dst


def refuse_links_out(path: Path | str, root: Path | str) -> None:
    """Fail in one line when ``path`` (a file, or any file under a folder) is a link leading outside ``root``
    or to nothing: what is copied from a run stays the run's own bytes."""
    path, root = Path(path), Path(root)
    root_resolved = root.resolve()
    for p in [path, *(sorted(path.rglob("*")) if path.is_dir() and not path.is_symlink() else [])]:
        if p.is_symlink():
            target = p.resolve()
            if not target.exists() or not (target == root_resolved or root_resolved in target.parents):
                where = "to nothing" if not target.exists() else f"outside '{root}'"
                raise EdgepressError(f"'{p}' is a symbolic link {where} (to '{_link_target(p)}'); only files inside "
                                     "the run are packaged: replace the link with the file itself")


def copy_tree(src: Path | str, dst: Path | str, root: Path | str | None = None) -> Path:
    """Copy folder ``src`` to a new ``dst`` without following links out of ``root`` (default ``src``).

    A link to a file inside ``root`` is copied as that file; a link leading outside it, or nowhere, is refused in
    one line naming it, so nothing from outside the run is shipped.
    """
    src, dst = Path(src), Path(dst)
    refuse_links_out(src, Path(root or src))
    needs = tree_size(src) + sum(p.resolve().stat().st_size for p in src.rglob("*") if p.is_symlink() and p.is_file())
    with writing(dst, needs=needs):
        check_free_space(dst.parent, needs)
        shutil.copytree(src, dst, symlinks=False)  # links (all inside root, checked above) become regular files
    return dst


def link_tree(src: Path | str, dst: Path | str) -> Path:
    """Give a new folder ``dst`` the files of ``src`` as hard links (no bytes copied; files that are one inode in
    ``src`` stay one); a file whose link the file system refuses is copied. A link out of ``src`` is refused."""
    src, dst = Path(src), Path(dst)
    refuse_links_out(src, src)
    remove_own(dst)
    with writing(dst):
        for path in sorted(src.rglob("*")):
            target = dst / path.relative_to(src)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return dst


def replace_dir(tmp: Path, final: Path, what: str) -> None:
    """Put the finished folder ``tmp`` at ``final`` (a rename), removing an older ``final``; a link at ``final``
    is refused, not followed."""
    refuse_symlink(final, what)
    try:
        with writing(final):
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # it cannot be put in place: leave nothing that looks finished
        raise


class NoFollowFileHandler(logging.FileHandler):
    """A log file opened with ``O_NOFOLLOW`` (a planted link is refused); a full disk drops log lines quietly
    instead of printing logging's traceback for each one."""

    def _open(self):  # noqa: ANN202 - logging.FileHandler's hook
        fd = open_no_follow(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, what="log file")
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        import sys

        exc = sys.exc_info()[1]
        if exc is not None and (is_disk_full(exc) or unwritable_error(exc) is not None):
            return
        super().handleError(record)
