"""The teacher's outputs on disk: fp16 last hidden states (unpadded), pooled embeddings, logits.

Layout under ``<cache_dir>/teacher/<teacher key>/``::

    meta.json                   hidden size, logit count, record layout version, what the key was made of
    shard-<rank>[-<n>]/lock       held (``flock``) by the one process writing this shard, for as long as it runs
    shard-<rank>[-<n>]/hidden.f16 every cached row's last hidden state, rows appended back to back (n_tokens x H, fp16)
    shard-<rank>[-<n>]/rows.bin   one fixed-size record per row: text key, offset and length into hidden.f16, a
                                  CRC-32 checksum, pooled embedding (fp32) and logits (fp32, classification)

The teacher key hashes the teacher's weights (the tensors in memory, so a fine-tuned teacher or a QAT caller
gets its own key), its interface (pooling, normalisation), the task, the tokenizer, the max length and the record
layout version (a folder written by an older layout is never read); a row is found by its text key (a 64-bit
BLAKE2b of the text and pair).

Any number of processes may share one folder at once (torchrun ranks, two runs or search depths pointed at one
``distill.cache_dir``). A writer claims a shard of its own: ``shard-<RANK>`` when no live process holds its lock,
else ``shard-<RANK>-1``, ``-2``...; the lock dies with its process, so a killed run's shard is taken over (its
torn last record dropped) by the next one. Only the owner appends to a shard, so its offsets are always right;
every process reads every shard, including rows others add while it runs. A record is appended only after its
hidden rows are on disk, and each record's checksum covers the record and its hidden rows: a lookup that meets a
record failing its bounds or checksum treats it as a miss (the caller recomputes the row and appends a good copy,
which the index then serves), counts it in ``teacher_cache_corrupt`` and says so once. :func:`verify_cache`
(``edgepress cache verify``) scans a cache for such records.

The cache is filled lazily by training: rows not found are computed by the teacher and appended, until the
folder holds ``max_bytes``; past that, misses stay on-the-fly teacher forwards. Memory: the lookup index is
two numpy arrays (16 bytes per cached row); hidden states are read through ``numpy.memmap``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

import numpy as np

from compress.core.errors import EdgepressError
from compress.tasks import task_spec

HIDDEN_FILE, ROWS_FILE, META_FILE, LOCK_FILE = "hidden.f16", "rows.bin", "meta.json", "lock"
LAYOUT = 2  # record layout version (2: per-record checksum, locked shards); part of the teacher key and meta.json
_MERGE_EVERY = 4096  # fresh keys kept in a dict until merged into the sorted index
_ROW_BITS = 40  # an index location is (shard number << 40) | record number


def text_key(text: str, pair: str | None = None) -> int:
    """64-bit BLAKE2b of a row's text (and pair), as a signed int64 (an Arrow/numpy int64 column)."""
    h = hashlib.blake2b(text.encode("utf-8"), digest_size=8)
    if pair is not None:
        h.update(b"\x1f" + pair.encode("utf-8"))
    return int.from_bytes(h.digest(), "little", signed=True)


def text_keys(texts: Iterable[str], pairs: Iterable[str] | None = None) -> list[int]:
    if pairs is None:
        return [text_key(t) for t in texts]
    return [text_key(t, p) for t, p in zip(texts, pairs)]


def teacher_key(teacher: Any, interface: dict[str, Any], task: str, tokenizer: Any, max_length: int) -> str:
    """Hash of what decides the teacher's outputs for a text: weights, interface, task, tokenizer, max length."""
    import torch

    h = hashlib.blake2b(digest_size=12)
    desc = {"layout": LAYOUT, "task": task, "interface": interface, "max_length": max_length, "class": type(teacher).__name__,
            "tokenizer": [type(tokenizer).__name__, len(tokenizer), getattr(tokenizer, "model_max_length", None),
                          getattr(tokenizer, "do_lower_case", None), getattr(tokenizer, "padding_side", None)]}
    h.update(json.dumps(desc, sort_keys=True, default=str).encode())
    for name, t in teacher.state_dict().items():
        if task_spec(task).pooled and (name.startswith("pooler.") or ".pooler." in name):
            continue  # BERT's pooler does not touch last_hidden_state, and a headless load initialises it randomly
        t = t.detach().cpu().contiguous()
        h.update(name.encode() + str(tuple(t.shape)).encode() + str(t.dtype).encode())
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.view(torch.int16)
        elif t.dtype == torch.bool:
            t = t.to(torch.uint8)
        h.update(t.numpy().tobytes() if t.numel() < 4096 else memoryview(t.numpy()).cast("B"))
    return h.hexdigest()


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def record_dtype(hidden: int, n_logits: int) -> np.dtype:
    """The fixed-size record of ``rows.bin`` for rows ``hidden`` wide with ``n_logits`` logits."""
    fields: list[tuple] = [("key", "<i8"), ("off", "<i8"), ("n", "<i4"), ("sum", "<u4"), ("emb", "<f4", (hidden,))]
    if n_logits:
        fields.append(("logits", "<f4", (n_logits,)))
    return np.dtype(fields)


def record_checksum(rec: np.void, rows: np.ndarray) -> int:
    """CRC-32 of a record (its ``sum`` field read as zero) and the fp16 hidden rows it points at (CRC-32: several
    times faster than a cryptographic hash, and it is read on every lookup)."""
    raw = bytearray(rec.tobytes())
    at = rec.dtype.fields["sum"][1]
    raw[at:at + 4] = bytes(4)
    return zlib.crc32(np.ascontiguousarray(rows, dtype=np.float16), zlib.crc32(raw))


def record_rows(rec: np.void, hidden: np.ndarray) -> np.ndarray | None:
    """The hidden rows a record points at (a copy), or None when its offset and length fall outside the file."""
    off, n = int(rec["off"]), int(rec["n"])
    if off < 0 or n <= 0 or off + n > hidden.shape[0]:
        return None
    return np.array(hidden[off:off + n])


def _hidden_map(path: Path, width: int) -> np.ndarray:
    """hidden.f16 as a read-only [rows, width] fp16 map (an empty array for an empty or missing file)."""
    n = path.stat().st_size // (2 * width) if path.exists() else 0
    if n == 0:
        return np.zeros((0, width), dtype=np.float16)
    return np.memmap(path, dtype=np.float16, mode="r", shape=(n, width))


def _try_lock(fh: IO[bytes]) -> bool:
    """Take an exclusive lock on ``fh`` without waiting (released when the file closes or its process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@dataclass
class _Shard:
    folder: Path
    records: int = 0            # whole records indexed
    hidden_map: np.ndarray | None = None
    rows_map: np.memmap | None = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    written: int = 0
    skipped_full: int = 0
    corrupt: int = 0            # records that failed their bounds or checksum check (served as misses)
    read_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class TeacherCache:
    """Disk-backed teacher outputs for one teacher key, safe to share between processes; see the module docstring."""

    def __init__(self, root: Path, key: str, hidden: int, n_logits: int, max_bytes: int, rank: int = 0,
                 writable: bool = True, describe: dict[str, Any] | None = None):
        self.root, self.key, self.hidden, self.n_logits = Path(root), key, hidden, n_logits
        self.folder = self.root / key
        self.max_bytes, self.rank, self.writable = max_bytes, rank, writable and max_bytes > 0
        self.dtype = record_dtype(hidden, n_logits)
        self.stats = CacheStats()
        self._keys = np.zeros(0, dtype=np.int64)  # sorted by key; a key met twice keeps both, older first
        self._locs = np.zeros(0, dtype=np.int64)
        self._distinct = 0
        self._fresh: dict[int, list[int]] = {}
        self._shards: dict[str, _Shard] = {}
        self._order: list[str] = []
        self._bad: set[int] = set()
        self._lock_fh: IO[bytes] | None = None
        self.shard_dir: Path | None = None  # the shard this process appends to
        if self.writable:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._create_meta({"layout": LAYOUT, "hidden": hidden, "n_logits": n_logits,
                               "record_bytes": self.dtype.itemsize, **(describe or {})})
        self._check_meta()
        if self.writable:
            self._claim_shard()
        self.refresh()
        self._bytes = folder_bytes(self.folder)

    def _create_meta(self, want: dict[str, Any]) -> None:
        """meta.json, unless present: written to a temp file only this thread uses, then renamed into place, so
        concurrent creators never see half a file nor rename each other's temp file."""
        meta = self.folder / META_FILE
        if meta.exists():
            return
        tmp = self.folder / f".{META_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(want, indent=2, default=str))
        os.replace(tmp, meta)

    def _check_meta(self) -> None:
        meta = self.folder / META_FILE
        if not meta.exists():
            return
        try:
            got = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise EdgepressError(f"teacher cache '{self.folder}': {META_FILE} is unreadable ({exc}); "
                                 "delete that folder") from None
        if not isinstance(got, dict) or got.get("layout") != LAYOUT:
            layout = got.get("layout", 1) if isinstance(got, dict) else "unknown"
            raise EdgepressError(f"teacher cache '{self.folder}' has record layout {layout}, this edgepress reads "
                                 f"layout {LAYOUT}; delete that folder")
        if got.get("hidden") != self.hidden or got.get("n_logits") != self.n_logits \
                or got.get("record_bytes") != self.dtype.itemsize:
            raise EdgepressError(f"teacher cache '{self.folder}' holds rows of another shape ({META_FILE}: hidden "
                                 f"{got.get('hidden')}, logits {got.get('n_logits')}); delete that folder")

    def _claim_shard(self) -> None:
        """Take the first shard of this rank whose lock no live process holds (``shard-<rank>``, ``-1``, ``-2``...),
        keep its lock until close(), drop a torn tail its last (killed) owner left, and open it for appending."""
        n = 0
        while True:
            own = self.folder / (f"shard-{self.rank}" if n == 0 else f"shard-{self.rank}-{n}")
            own.mkdir(exist_ok=True)
            fh = open(own / LOCK_FILE, "ab")
            try:
                locked = _try_lock(fh)
            except OSError as exc:  # a filesystem without file locks: read the cache, write nothing
                fh.close()
                self.writable = False
                self.stats.extra["write_error"] = f"no file locks in '{self.folder}' ({exc}): cache read-only"
                return
            if locked:
                break
            fh.close()
            n += 1
        self._lock_fh, self.shard_dir = fh, own
        rows, hidden = own / ROWS_FILE, own / HIDDEN_FILE
        for path, unit in ((rows, self.dtype.itemsize), (hidden, 2 * self.hidden)):
            size = path.stat().st_size if path.exists() else 0
            if size % unit:  # a record or hidden row cut short by a killed owner; no record points past it
                os.truncate(path, size - size % unit)
        self._hidden_fh = open(hidden, "ab")
        self._rows_fh = open(rows, "ab")
        self._hidden_end = self._hidden_fh.tell()

    # ------------------------------------------------------------------ index

    def refresh(self) -> None:
        """Index records that appeared in any shard (other ranks, or another run) since the last look."""
        if not self.folder.is_dir():
            return
        new_k: list[np.ndarray] = []
        new_v: list[np.ndarray] = []
        for sub in sorted(self.folder.glob("shard-*")):
            if sub.name not in self._shards:  # numbered in order of first sight: numbers never change
                if not sub.is_dir():
                    continue
                self._shards[sub.name] = _Shard(sub)
                self._order.append(sub.name)
            shard = self._shards[sub.name]
            try:
                n = (sub / ROWS_FILE).stat().st_size // self.dtype.itemsize
            except FileNotFoundError:
                continue
            if n <= shard.records:
                continue
            recs = np.memmap(sub / ROWS_FILE, dtype=self.dtype, mode="r", shape=(n,))
            new_k.append(np.array(recs["key"][shard.records:n], dtype=np.int64))
            new_v.append((self._order.index(sub.name) << _ROW_BITS) + np.arange(shard.records, n, dtype=np.int64))
            shard.records = n
        if sum(len(k) for k in new_k) >= _MERGE_EVERY:  # opening a large cache: straight into the sorted index
            self._merge(np.concatenate(new_k), np.concatenate(new_v))
            return
        for keys, locs in zip(new_k, new_v):
            for k, loc in zip(keys.tolist(), locs.tolist()):
                self._fresh.setdefault(k, []).append(loc)
        if len(self._fresh) >= _MERGE_EVERY:
            self._merge()

    def _merge(self, add_k: np.ndarray | None = None, add_v: np.ndarray | None = None) -> None:
        if not self._fresh and add_k is None:
            return
        pairs = [(k, loc) for k, locs in self._fresh.items() for loc in locs]
        k = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        v = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
        keys = np.concatenate([self._keys, k] + ([add_k] if add_k is not None else []))
        locs = np.concatenate([self._locs, v] + ([add_v] if add_v is not None else []))
        order = np.argsort(keys, kind="stable")  # equal keys stay in arrival order: the newest last
        self._keys, self._locs, self._fresh = keys[order], locs[order], {}
        self._distinct = int(np.count_nonzero(self._keys[1:] != self._keys[:-1])) + 1 if len(self._keys) else 0

    def _candidates(self, key: int) -> list[int]:
        """Where records of ``key`` are, newest first (two runs may both have written a row; a damaged one is
        followed by the sound copy written after it)."""
        locs = self._fresh.get(key, [])[::-1]
        lo = int(np.searchsorted(self._keys, key, side="left"))
        if lo < len(self._keys) and self._keys[lo] == key:
            hi = int(np.searchsorted(self._keys, key, side="right"))
            locs.extend(self._locs[lo:hi][::-1].tolist())
        return locs

    def __len__(self) -> int:
        self._merge()
        return self._distinct

    # ------------------------------------------------------------------ read / write

    def _maps(self, shard: _Shard) -> tuple[np.memmap, np.ndarray]:
        if shard.rows_map is None or len(shard.rows_map) < shard.records:
            shard.rows_map = np.memmap(shard.folder / ROWS_FILE, dtype=self.dtype, mode="r", shape=(shard.records,))
            shard.hidden_map = _hidden_map(shard.folder / HIDDEN_FILE, self.hidden)
        return shard.rows_map, shard.hidden_map

    def _read(self, loc: int, key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """One record's outputs after its key, bounds and checksum checks; None (and flagged) when it fails one."""
        shard = self._shards[self._order[loc >> _ROW_BITS]]
        i = loc & ((1 << _ROW_BITS) - 1)
        rows, hidden = self._maps(shard)
        if int(rows[i]["off"]) + int(rows[i]["n"]) > hidden.shape[0]:  # rows appended since the map was made
            shard.rows_map = None
            rows, hidden = self._maps(shard)
        rec = rows[i]
        h = record_rows(rec, hidden)
        why = ("key" if int(rec["key"]) != key else "bounds" if h is None
               else "checksum" if record_checksum(rec, h) != int(rec["sum"]) else None)
        if why is not None:
            self._flag(loc, f"record {i} of {shard.folder.name} failed its {why} check")
            return None
        return h, np.array(rec["emb"]), np.array(rec["logits"]) if self.n_logits else None

    def _flag(self, loc: int, what: str) -> None:
        self._bad.add(loc)
        self.stats.corrupt += 1
        if self.stats.corrupt == 1:
            from compress.core.console import note

            note(f"teacher cache '{self.folder}' is damaged ({what}): such rows are recomputed by the teacher and "
                 f"written again; `edgepress cache verify {self.folder}` lists every damaged record")

    def _serve(self, key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        for loc in self._candidates(key):
            if loc not in self._bad:
                got = self._read(loc, key)
                if got is not None:
                    return got
        return None

    def lookup(self, keys: list[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        """(hidden fp16 [n, H], embedding fp32 [H], logits fp32 or None) per key; None where not cached or where
        the only records of a key are damaged (the caller then recomputes the row and writes it)."""
        import time

        t0 = time.perf_counter()
        out = [self._serve(k) for k in keys]
        if any(o is None for o in out):
            self.refresh()  # rows another rank (or run) wrote since
            out = [o if o is not None else self._serve(k) for o, k in zip(out, keys)]
        hit = sum(o is not None for o in out)
        self.stats.hits += hit
        self.stats.misses += len(out) - hit
        self.stats.read_seconds += time.perf_counter() - t0
        return out

    def write(self, keys: list[int], hidden: list[np.ndarray], emb: np.ndarray, logits: np.ndarray | None) -> None:
        """Append rows (hidden: one fp16 [n_i, H] array per row); stops writing once the folder holds max_bytes."""
        if not self.writable or not keys:
            return
        add = sum(h.nbytes for h in hidden) + len(keys) * self.dtype.itemsize
        if self._bytes + add > self.max_bytes:
            self._bytes = folder_bytes(self.folder)  # other ranks count too
            if self._bytes + add > self.max_bytes:
                self.stats.skipped_full += len(keys)
                return
        recs = np.zeros(len(keys), dtype=self.dtype)
        recs["key"], recs["emb"] = keys, emb
        if self.n_logits:
            recs["logits"] = logits
        off = self._hidden_end // (2 * self.hidden)  # this process alone appends to its shard: the true end
        blobs = [np.ascontiguousarray(h, dtype=np.float16) for h in hidden]
        for j, h in enumerate(blobs):
            recs["off"][j], recs["n"][j] = off, h.shape[0]
            recs["sum"][j] = record_checksum(recs[j], h)
            off += h.shape[0]
        try:
            for h in blobs:
                self._hidden_fh.write(h.tobytes())
            self._hidden_fh.flush()  # hidden rows on disk before the records that point at them
            self._rows_fh.write(recs.tobytes())
            self._rows_fh.flush()
        except OSError as exc:  # disk full, quota: keep training on the fly
            self.writable = False
            self.stats.extra["write_error"] = f"{type(exc).__name__}: {exc}"
            return
        self._hidden_end = self._hidden_fh.tell()
        self._bytes += add
        self.stats.written += len(keys)
        self.refresh()

    def size_bytes(self) -> int:
        return self._bytes if self.writable else folder_bytes(self.folder)

    def close(self) -> None:
        """Close the shard's files and release its lock (a later process of this rank may then take it over)."""
        if self._lock_fh is not None:
            self._hidden_fh.close()
            self._rows_fh.close()
            self._lock_fh.close()
            self._lock_fh = None
            self.writable = False

    def metrics(self) -> dict[str, Any]:
        total = self.stats.hits + self.stats.misses
        return {"teacher_cache_hits": self.stats.hits, "teacher_cache_misses": self.stats.misses,
                "teacher_cache_hit_rate": round(self.stats.hits / total, 4) if total else 0.0,
                "teacher_cache_written": self.stats.written, "teacher_cache_rows": len(self),
                "teacher_cache_bytes": folder_bytes(self.folder), "teacher_cache_full_skips": self.stats.skipped_full,
                "teacher_cache_corrupt": self.stats.corrupt,
                "teacher_cache_read_seconds": round(self.stats.read_seconds, 2),
                "teacher_cache_dir": str(self.folder), **self.stats.extra}


# ---------------------------------------------------------------------- verify


@dataclass
class BadRecord:
    """A record failing its bounds or checksum check: its shard, position, the text key it claims, why."""

    shard: str
    index: int
    key: int
    reason: str
    superseded: bool = False  # a sound record of the same key exists; lookups serve that one


@dataclass
class FolderReport:
    """What :func:`verify_cache` found in one teacher-key folder."""

    folder: Path
    shards: int = 0
    records: int = 0
    bytes: int = 0
    torn_bytes: int = 0  # a partial last record or hidden row: a writer mid-append, or one killed (dropped on reuse)
    bad: list[BadRecord] = field(default_factory=list)
    problem: str | None = None  # why the folder could not be scanned: meta.json missing/unreadable, older layout

    @property
    def unrepaired(self) -> list[BadRecord]:
        return [b for b in self.bad if not b.superseded]


@dataclass
class CacheReport:
    """:func:`verify_cache`'s answer: one :class:`FolderReport` per teacher key."""

    path: Path
    folders: list[FolderReport]

    @property
    def records(self) -> int:
        return sum(f.records for f in self.folders)

    @property
    def bad(self) -> list[BadRecord]:
        return [b for f in self.folders for b in f.bad]

    @property
    def clean(self) -> bool:
        """Every folder readable, and every damaged record superseded by a sound copy (so none is ever served)."""
        return all(f.problem is None and not f.unrepaired for f in self.folders)


def cache_folders(path: Path | str) -> list[Path]:
    """The teacher-key folders under ``path``: ``distill.cache_dir`` or a run's ``.cache``, its ``teacher/`` folder,
    or one key folder itself."""
    p = Path(path).expanduser()
    hint = "give distill.cache_dir, a run's .cache folder, or one of its teacher/<key> folders"
    if not p.is_dir():
        raise EdgepressError(f"teacher cache '{p}': no such folder; {hint}")

    def is_key(d: Path) -> bool:
        return (d / META_FILE).is_file() or any(s.is_dir() for s in d.glob("shard-*"))

    if is_key(p):
        return [p]
    for base in (p / "teacher", p):
        found = sorted(d for d in base.iterdir() if d.is_dir() and is_key(d)) if base.is_dir() else []
        if found:
            return found
    raise EdgepressError(f"'{p}' holds no teacher cache (no teacher/<key>/{META_FILE} under it); {hint}")


def _scan(folder: Path) -> FolderReport:
    rep = FolderReport(folder, bytes=folder_bytes(folder))
    shards = sorted(d for d in folder.glob("shard-*") if d.is_dir())
    rep.shards = len(shards)
    try:
        meta = json.loads((folder / META_FILE).read_text())
        hidden, n_logits, layout = int(meta["hidden"]), int(meta.get("n_logits", 0)), meta.get("layout", 1)
    except FileNotFoundError:
        rep.problem = f"no {META_FILE}: not a teacher cache edgepress wrote, delete it"
        return rep
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        rep.problem = f"{META_FILE} unreadable ({type(exc).__name__}: {exc}): delete the folder"
        return rep
    if layout != LAYOUT:
        rep.problem = f"record layout {layout} (this edgepress reads {LAYOUT}, so never reads it): delete the folder"
        return rep
    dtype = record_dtype(hidden, n_logits)
    good: list[np.ndarray] = []
    for sub in shards:
        rows_path, hidden_path = sub / ROWS_FILE, sub / HIDDEN_FILE
        size = rows_path.stat().st_size if rows_path.exists() else 0
        n = size // dtype.itemsize
        rep.torn_bytes += size % dtype.itemsize
        rep.torn_bytes += (hidden_path.stat().st_size if hidden_path.exists() else 0) % (2 * hidden)
        if n == 0:
            continue
        rep.records += n
        hmap = _hidden_map(hidden_path, hidden)
        recs = np.memmap(rows_path, dtype=dtype, mode="r", shape=(n,))
        ok = np.ones(n, dtype=bool)
        for i in range(n):
            rec = recs[i]
            h = record_rows(rec, hmap)
            why = "bounds" if h is None else "checksum" if record_checksum(rec, h) != int(rec["sum"]) else None
            if why is not None:
                ok[i] = False
                rep.bad.append(BadRecord(sub.name, i, int(rec["key"]), why))
        good.append(np.array(recs["key"][ok], dtype=np.int64))
    if rep.bad:
        sound = np.concatenate(good) if good else np.zeros(0, dtype=np.int64)
        for b, s in zip(rep.bad, np.isin(np.array([b.key for b in rep.bad], dtype=np.int64), sound)):
            b.superseded = bool(s)
    return rep


def verify_cache(path: Path | str) -> CacheReport:
    """Check every record of every shard of a teacher cache (bounds and checksum) while runs may be using it;
    ``path`` is ``distill.cache_dir``, a run's ``.cache``, its ``teacher/`` folder or one teacher-key folder."""
    return CacheReport(Path(path), [_scan(f) for f in cache_folders(path)])
