"""The teacher's outputs on disk: fp16 last hidden states (unpadded), pooled embeddings, logits.

Layout under ``<cache_dir>/teacher/<teacher key>/``::

    meta.json              hidden size, logit count, what the key was made of
    shard-<rank>/hidden.f16  every cached row's last hidden state, rows appended back to back (n_tokens x H, fp16)
    shard-<rank>/rows.bin    one fixed-size record per row: text key, offset and length into hidden.f16,
                             pooled embedding (fp32) and logits (fp32, classification/regression)

The teacher key hashes the teacher's weights (the tensors in memory, so a fine-tuned teacher or a QAT caller
gets its own key), its interface (pooling, normalisation), the task, the tokenizer and the max length; a row
is found by its text key (a 64-bit BLAKE2b of the text and pair). Each process writes only its own shard
(``shard-<RANK>``), so torchrun ranks never write the same file; every process reads every shard, including
rows other ranks add while it runs. A record is appended only after its hidden state is on disk, and a torn
last record (a killed run) is dropped when the shard is opened again, so a crash never serves half a row.

The cache is filled lazily by training: rows not found are computed by the teacher and appended, until the
folder holds ``max_bytes``; past that, misses stay on-the-fly teacher forwards. Memory: the lookup index is
two numpy arrays (16 bytes per cached row); hidden states are read through ``numpy.memmap``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from compress.errors import EdgepressError

HIDDEN_FILE, ROWS_FILE, META_FILE = "hidden.f16", "rows.bin", "meta.json"
_MERGE_EVERY = 4096  # fresh keys kept in a dict until merged into the sorted index


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
    desc = {"task": task, "interface": interface, "max_length": max_length, "class": type(teacher).__name__,
            "tokenizer": [type(tokenizer).__name__, len(tokenizer), getattr(tokenizer, "model_max_length", None),
                          getattr(tokenizer, "do_lower_case", None), getattr(tokenizer, "padding_side", None)]}
    h.update(json.dumps(desc, sort_keys=True, default=str).encode())
    for name, t in teacher.state_dict().items():
        if task == "embedding" and (name.startswith("pooler.") or ".pooler." in name):
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


@dataclass
class _Shard:
    folder: Path
    records: int = 0            # complete records known
    hidden_map: np.memmap | None = None
    rows_map: np.memmap | None = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    written: int = 0
    skipped_full: int = 0
    read_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class TeacherCache:
    """Disk-backed teacher outputs for one teacher key; see the module docstring for the layout."""

    def __init__(self, root: Path, key: str, hidden: int, n_logits: int, max_bytes: int, rank: int = 0,
                 writable: bool = True, describe: dict[str, Any] | None = None):
        self.root, self.key, self.hidden, self.n_logits = Path(root), key, hidden, n_logits
        self.folder = self.root / key
        self.max_bytes, self.rank, self.writable = max_bytes, rank, writable and max_bytes > 0
        fields: list[tuple] = [("key", "<i8"), ("off", "<i8"), ("n", "<i4"), ("emb", "<f4", (hidden,))]
        if n_logits:
            fields.append(("logits", "<f4", (n_logits,)))
        self.dtype = np.dtype(fields)
        self.stats = CacheStats()
        self._keys = np.zeros(0, dtype=np.int64)
        self._locs = np.zeros(0, dtype=np.int64)
        self._fresh: dict[int, int] = {}
        self._shards: dict[str, _Shard] = {}
        self._order: list[str] = []
        self._own: _Shard | None = None
        if self.writable:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / META_FILE
            want = {"hidden": hidden, "n_logits": n_logits, "record_bytes": self.dtype.itemsize, **(describe or {})}
            if not meta.exists():
                tmp = meta.with_suffix(f".tmp{rank}")
                tmp.write_text(json.dumps(want, indent=2, default=str))
                os.replace(tmp, meta)
        self._check_meta()
        if self.writable:
            own = self.folder / f"shard-{rank}"
            own.mkdir(exist_ok=True)
            rows = own / ROWS_FILE
            if rows.exists():  # drop a torn last record left by a killed run (only this rank writes here)
                whole = rows.stat().st_size // self.dtype.itemsize * self.dtype.itemsize
                if whole != rows.stat().st_size:
                    os.truncate(rows, whole)
            self._hidden_fh = open(own / HIDDEN_FILE, "ab")
            self._rows_fh = open(rows, "ab")
            self._hidden_end = self._hidden_fh.tell()
        self.refresh()
        self._own = self._shards.get(f"shard-{rank}") if self.writable else None
        self._bytes = folder_bytes(self.folder)

    def _check_meta(self) -> None:
        meta = self.folder / META_FILE
        if not meta.exists():
            return
        got = json.loads(meta.read_text())
        if got.get("hidden") != self.hidden or got.get("n_logits") != self.n_logits \
                or got.get("record_bytes") != self.dtype.itemsize:
            raise EdgepressError(f"teacher cache '{self.folder}' holds rows of another shape ({META_FILE}: hidden "
                                 f"{got.get('hidden')}, logits {got.get('n_logits')}); delete that folder")

    # ------------------------------------------------------------------ index

    def refresh(self) -> None:
        """Index records that appeared in any shard (other ranks, or another run) since the last look."""
        if not self.folder.is_dir():
            return
        for sub in sorted(self.folder.glob("shard-*")):
            if sub.name not in self._shards:  # numbered in order of first sight: numbers never change
                self._shards[sub.name] = _Shard(sub)
                self._order.append(sub.name)
            shard = self._shards[sub.name]
            rows = sub / ROWS_FILE
            try:
                size = rows.stat().st_size
            except FileNotFoundError:
                continue
            n = size // self.dtype.itemsize
            if n <= shard.records:
                continue
            recs = np.memmap(rows, dtype=self.dtype, mode="r", shape=(n,))
            hidden_size = (sub / HIDDEN_FILE).stat().st_size // (2 * self.hidden)
            new = recs[shard.records:n]
            ok = (new["off"] + new["n"]) <= hidden_size  # a record whose hidden rows are not all there yet
            shard_no = self._order.index(sub.name)
            first = shard.records
            good = len(ok) if ok.all() else int(np.argmin(ok))  # the complete prefix
            for j, k in enumerate(new["key"][:good].tolist()):
                self._fresh[k] = (shard_no << 40) | (first + j)
            shard.records = first + good
            shard.rows_map = None
        if len(self._fresh) >= _MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        if not self._fresh:
            return
        k = np.fromiter(self._fresh.keys(), dtype=np.int64, count=len(self._fresh))
        v = np.fromiter(self._fresh.values(), dtype=np.int64, count=len(self._fresh))
        keys, locs = np.concatenate([self._keys, k]), np.concatenate([self._locs, v])
        order = np.argsort(keys, kind="stable")
        keys, locs = keys[order], locs[order]
        last = np.ones(len(keys), dtype=bool)  # duplicates: keep one
        last[:-1] = keys[1:] != keys[:-1]
        self._keys, self._locs, self._fresh = keys[last], locs[last], {}

    def _find(self, key: int) -> int | None:
        loc = self._fresh.get(key)
        if loc is not None:
            return loc
        i = int(np.searchsorted(self._keys, key))
        if i < len(self._keys) and self._keys[i] == key:
            return int(self._locs[i])
        return None

    def __len__(self) -> int:
        self._merge()
        return len(self._keys)

    # ------------------------------------------------------------------ read / write

    def _maps(self, shard: _Shard) -> tuple[np.memmap, np.memmap]:
        if shard.rows_map is None or len(shard.rows_map) < shard.records:
            shard.rows_map = np.memmap(shard.folder / ROWS_FILE, dtype=self.dtype, mode="r", shape=(shard.records,))
            n = (shard.folder / HIDDEN_FILE).stat().st_size // (2 * self.hidden)
            shard.hidden_map = np.memmap(shard.folder / HIDDEN_FILE, dtype=np.float16, mode="r", shape=(n, self.hidden))
        return shard.rows_map, shard.hidden_map

    def lookup(self, keys: list[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        """(hidden fp16 [n, H], embedding fp32 [H], logits fp32 or None) per key, None where not cached."""
        import time

        t0 = time.perf_counter()
        locs = [self._find(k) for k in keys]
        if any(loc is None for loc in locs):
            self.refresh()  # rows another rank (or run) wrote since
            locs = [loc if loc is not None else self._find(k) for loc, k in zip(locs, keys)]
        names = self._order
        out: list = []
        for loc in locs:
            if loc is None:
                out.append(None)
                continue
            shard = self._shards[names[loc >> 40]]
            rows, hidden = self._maps(shard)
            rec = rows[loc & ((1 << 40) - 1)]
            off, n = int(rec["off"]), int(rec["n"])
            if hidden.shape[0] < off + n:
                shard.rows_map = None
                rows, hidden = self._maps(shard)
            out.append((np.array(hidden[off:off + n]), np.array(rec["emb"]),
                        np.array(rec["logits"]) if self.n_logits else None))
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
        off = self._hidden_end // (2 * self.hidden)
        try:
            for j, (k, h) in enumerate(zip(keys, hidden)):
                recs[j]["key"], recs[j]["off"], recs[j]["n"] = k, off, h.shape[0]
                off += h.shape[0]
                self._hidden_fh.write(np.ascontiguousarray(h, dtype=np.float16).tobytes())
            recs["emb"] = emb
            if self.n_logits:
                recs["logits"] = logits
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
        if self.writable:
            self._hidden_fh.close()
            self._rows_fh.close()

    def metrics(self) -> dict[str, Any]:
        total = self.stats.hits + self.stats.misses
        return {"teacher_cache_hits": self.stats.hits, "teacher_cache_misses": self.stats.misses,
                "teacher_cache_hit_rate": round(self.stats.hits / total, 4) if total else 0.0,
                "teacher_cache_written": self.stats.written, "teacher_cache_rows": len(self),
                "teacher_cache_bytes": folder_bytes(self.folder), "teacher_cache_full_skips": self.stats.skipped_full,
                "teacher_cache_read_seconds": round(self.stats.read_seconds, 2),
                "teacher_cache_dir": str(self.folder), **self.stats.extra}
