"""Reading a data source into columns: files, hub datasets, or the built-in demo corpus.

Every file is read by Hugging Face ``datasets`` (no hand-written reader): ``.tsv`` / ``.csv`` (csv
builder; TSV with ``quoting=3``, QUOTE_NONE, since sentences hold quote marks), ``.jsonl`` / ``.json``,
``.parquet`` and ``.txt`` (one sentence per line). ``data.header: false`` reads csv/tsv files that have
no header row; their columns are then named by position, ``"0"``, ``"1"``, ... Other sources:
``hub:NAME[/CONFIG][@SPLIT]`` (network) and ``builtin:pydoc`` — English sentences split out of CPython's
own ``pydoc_data.topics``, a demo corpus for the default run, not an evaluation set.

This is the layer under every task's loader (:mod:`compress.data.rows` for sentence rows, :mod:`compress.tasks.ner`,
:mod:`compress.tasks.qa`): it knows files and columns, not tasks.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from compress.core.errors import DataError

BUILTIN_CORPORA = ("builtin:pydoc",)



FILE_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".tsv": ("csv", {"delimiter": "\t", "quoting": 3}),
    ".csv": ("csv", {}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".parquet": ("parquet", {}),
    ".txt": ("text", {}),
}



_TEXT_FORMATS = (".tsv", ".csv", ".jsonl", ".json", ".txt")



def builtin_pydoc_sentences(min_words: int = 5, max_words: int = 40) -> list[str]:
    """Prose sentences from the Python docs bundled with every CPython (no download)."""
    from pydoc_data.topics import topics

    sentences: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            lines = [ln.strip() for ln in para.splitlines()]
            if not lines or any(ln.startswith((">>>", "...", "*", "|", "+")) for ln in lines) or para.startswith("   "):
                continue
            text = " ".join(lines)
            for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
                words = sent.split()
                if min_words <= len(words) <= max_words and sent[0].isupper() and sent not in seen:
                    if sum(ch.isalpha() or ch == " " for ch in sent) / len(sent) > 0.85:
                        seen.add(sent)
                        sentences.append(sent)
    return sentences


# ---------------------------------------------------------------- reading (all through `datasets`)



@dataclass
class Columns:
    """A source read into columns; ``class_names`` holds a hub ClassLabel's names per column."""

    data: dict[str, list[Any]]
    class_names: dict[str, list[str]]

    @property
    def names(self) -> list[str]:
        return list(self.data)

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0



def _first_non_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte offset) of the first byte that is not UTF-8, read in chunks; None if the file is UTF-8."""
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as exc:
                pos = max(exc.start, 0)
                # the decoder may hold back up to 3 bytes of an unfinished sequence from the previous chunk
                return lines + chunk.count(b"\n", 0, pos), offset + pos
            lines += chunk.count(b"\n")
            offset += len(chunk)
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return lines, offset
    return None



def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc



def _load_quietly(builder: str, **kwargs: Any):
    """``datasets.load_dataset`` with its progress bars and log lines off, cached in a temp folder.

    Local files need no network: the csv/json/parquet/text builders ship inside ``datasets``. The
    Arrow cache lives in a temporary folder that is removed once the rows are in memory, so a changed
    file is never served from a stale cache and nothing piles up under ~/.cache.
    """
    import logging as _logging

    import datasets
    from datasets.utils import logging as dlog

    bars = dlog.is_progress_bar_enabled()
    level = dlog.get_verbosity()
    dlog.disable_progress_bar()
    dlog.set_verbosity(_logging.CRITICAL)
    try:
        with tempfile.TemporaryDirectory(prefix="edgepress-data-") as cache:
            ds = datasets.load_dataset(builder, cache_dir=cache, keep_in_memory=True, **kwargs)
            class_names = {k: list(f.names) for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
            return Columns(ds.to_dict(), class_names)
    finally:
        dlog.set_verbosity(level)
        if bars:
            dlog.enable_progress_bar()



def raise_read_error(exc: BaseException, path: Path, source: str, suffix: str) -> None:
    """One actionable line for a file `datasets` could not read (encoding, empty, parser error)."""
    root = _root_cause(exc)
    if suffix in _TEXT_FORMATS and (isinstance(root, UnicodeDecodeError) or _first_non_utf8(path)):
        where = _first_non_utf8(path)
        at = f" (line {where[0]}, byte offset {where[1]})" if where else ""
        raise DataError(f"data file '{source}' is not UTF-8 text{at}; re-save it as UTF-8, "
                        "e.g. iconv -f latin1 -t utf-8") from None
    msg = str(root).strip().splitlines()[0][:200] if str(root).strip() else type(root).__name__
    if "corresponds to no data" in msg or "No columns to parse" in msg:
        raise DataError(f"data file '{source}' is empty (no rows after the header)") from None
    raise DataError(f"data file '{source}' could not be read as {suffix[1:]}: {msg}") from None



def file_builder(path: Path, source: str, header: bool) -> tuple[str, str, dict[str, Any]]:
    """(suffix, ``datasets`` builder, its kwargs) for a data file; an unknown extension or an empty file is refused."""
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise DataError(f"data file '{source}': unsupported extension '{suffix}'; use "
                        f"{', '.join(FILE_FORMATS)}")
    if path.stat().st_size == 0:
        raise DataError(f"data file '{source}' is empty (0 bytes)")
    builder, kwargs = FILE_FORMATS[suffix]
    kwargs = dict(kwargs)
    if builder == "csv" and not header:
        kwargs["header"] = None  # columns are then named "0", "1", ... by position
    return suffix, builder, kwargs



def _read_file(path: Path, source: str, header: bool) -> Columns:
    suffix, builder, kwargs = file_builder(path, source, header)
    try:
        cols = _load_quietly(builder, data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # noqa: BLE001 - datasets wraps parser errors of pandas/pyarrow/json
        raise_read_error(exc, path, source, suffix)
    if "__index_level_0__" in cols.data:  # pandas shifted a ragged csv: some rows have more fields than the header
        raise DataError(f"data file '{source}': some rows have more fields than the header row "
                        f"({len(cols.names) - 1} columns); check the delimiter or quote characters")
    if builder == "text":  # one sentence per line; blank lines are not examples
        cols = Columns({"text": [t for t in cols.data.get("text", []) if t.strip()]}, {})
    if len(cols) == 0:
        raise DataError(f"data file '{source}' is empty (no rows after the header)")
    return cols



def parse_hub_spec(spec: str) -> tuple[str, str | None, str]:
    """``hub:NAME[/CONFIG][@SPLIT]`` as (dataset id, config, split); ``glue/sst2`` is glue's sst2 config."""
    name = spec[len("hub:"):]
    split = "train"
    if "@" in name:
        name, split = name.rsplit("@", 1)
    parts = name.split("/")
    config = None
    if len(parts) == 2 and parts[0] in ("glue", "super_glue"):
        name, config = parts
    elif len(parts) == 3:
        name, config = "/".join(parts[:2]), parts[2]
    return name, config, split



def read_hub(spec: str) -> Columns:
    """Columns of a hub dataset split (``hub:NAME[/CONFIG][@SPLIT]``), with each ClassLabel column's names."""
    name, config, split = parse_hub_spec(spec)
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # the hub raises many types: connection, not found, bad config
        raise DataError(f"could not load hub dataset '{spec}': {type(exc).__name__}: {str(exc)[:200]}") from None
    class_names = {k: list(f.names) for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    return Columns(ds.to_dict(), class_names)



# ---------------------------------------------------------------- the run's copy of each source (read once)
#
# A run reads each source once: its split (compress.data.artifact.write_plan, inside ``reading_files``) reads the
# data files and stores their rows in the data artifact; while its stages run (and its search branches, nested in the
# same process), ``reading_sources`` stores a source a stage reads itself (vocab.corpus) as Parquet under
# ``runs/<name>/data/sources/`` at its first read and serves every later read from that copy.

_SOURCES: ContextVar[Path | None] = ContextVar("edgepress_sources", default=None)  # the running pipeline's copies


def _stored_name(source: str, kind: str) -> str:
    return hashlib.sha256(f"{source}\0{kind}".encode()).hexdigest()[:24]


@contextmanager
def reading_files() -> Iterator[None]:
    """Inside the block every source is read from its file, with no copy kept: the run's split, whose rows the data
    artifact stores."""
    token = _SOURCES.set(None)
    try:
        yield
    finally:
        _SOURCES.reset(token)


@contextmanager
def reading_sources(folder: Path) -> Iterator[None]:
    """Inside the block a source stored under ``folder`` is read from there, not from its file; one not stored yet
    (a stage's own corpus, vocab.corpus) is stored there at its first read."""
    token = _SOURCES.set(Path(folder))
    try:
        yield
    finally:
        _SOURCES.reset(token)


def active_sources() -> Path | None:
    """The folder the running pipeline reads its stored sources from, or None (a stage on its own)."""
    return _SOURCES.get()


def _stored(folder: Path, source: str, kind: str) -> Columns | None:
    import pyarrow.parquet as pq

    base = folder / _stored_name(source, kind)
    try:
        table = pq.read_table(base.with_suffix(".parquet"))
        class_names = json.loads(base.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return Columns(table.to_pydict(), class_names)


def _store(folder: Path, source: str, kind: str, cols: Columns) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from compress.core.fsio import refuse_symlink, write_bytes, write_text

    refuse_symlink(folder, "the run's stored data")
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / _stored_name(source, kind)
    buf = pa.BufferOutputStream()
    try:
        pq.write_table(pa.table(cols.data), buf)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return  # columns Arrow cannot hold as one type each: no copy, later reads go to the file
    # the names first: a copy is only read when both files are there, each written whole
    write_text(base.with_suffix(".json"), json.dumps(cols.class_names), "the run's stored data")
    write_bytes(base.with_suffix(".parquet"), buf.getvalue().to_pybytes(), "the run's stored data")


def read_once(source: str, kind: str, read: Callable[[], Columns]) -> Columns:
    """``read()``, the columns of ``source`` as one reader (``kind``) parses them; inside a running pipeline, the
    run's stored copy of it, made at its first read (``reading_sources``)."""
    kept = _SOURCES.get()
    if kept is None:
        return _fresh_read(source, read)
    cols = _stored(kept, source, kind)
    if cols is None:
        cols = _fresh_read(source, read)
        _store(kept, source, kind, cols)
    return cols


def _fresh_read(source: str, read: Callable[[], Columns]) -> Columns:
    """The one place a source's file (or hub dataset) is actually read (a test counts the calls)."""
    return read()


def read_columns(source: str, header: bool = True) -> Columns:
    """Columns of a file path, hub spec or builtin corpus (builtin corpora have one 'text' column); inside a
    running pipeline, the run's stored copy of the source when it has one (see ``reading_sources``)."""
    return read_once(source, f"columns:{header}", lambda: _read_source(source, header))


def _read_source(source: str, header: bool) -> Columns:
    if source in BUILTIN_CORPORA:
        return Columns({"text": builtin_pydoc_sentences()}, {})
    if source.startswith("hub:"):
        return read_hub(source)
    path = Path(source).expanduser()
    if path.is_dir():
        raise DataError(f"data file '{source}' is a folder; give a file ({', '.join(FILE_FORMATS)})")
    if not path.is_file():
        raise DataError(f"data file '{source}' does not exist")
    return _read_file(path, source, header)



class QuietDatasets:
    """`datasets` progress bars and log lines off inside the block."""

    def __enter__(self):
        import logging as _logging

        from datasets.utils import logging as dlog

        self._bars, self._level = dlog.is_progress_bar_enabled(), dlog.get_verbosity()
        dlog.disable_progress_bar()
        dlog.set_verbosity(_logging.CRITICAL)
        return self

    def __exit__(self, *exc) -> None:
        from datasets.utils import logging as dlog

        dlog.set_verbosity(self._level)
        if self._bars:
            dlog.enable_progress_bar()



def arrow_dataset(source: str, cache_dir: Path, header: bool = True):
    """A source as a memory-mapped ``datasets.Dataset`` whose Arrow files live under ``cache_dir``.

    Files go through the same builders and error messages as :func:`read_columns`; ``.txt`` blank lines are
    dropped. Hub datasets come memory-mapped from the hub cache; the builtin corpus is small and in memory.
    """
    import datasets

    if source in BUILTIN_CORPORA:
        return datasets.Dataset.from_dict({"text": builtin_pydoc_sentences()})
    if source.startswith("hub:"):
        return datasets.Dataset.from_dict(read_hub(source).data)
    path = Path(source).expanduser()
    if path.is_dir():
        raise DataError(f"data file '{source}' is a folder; give a file ({', '.join(FILE_FORMATS)})")
    if not path.is_file():
        raise DataError(f"data file '{source}' does not exist")
    suffix, builder, kwargs = file_builder(path, source, header)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    try:
        with QuietDatasets():
            ds = datasets.load_dataset(builder, data_files=str(path.resolve()), split="train",
                                       cache_dir=str(cache_dir), **kwargs)
            if builder == "text":
                ds = ds.filter(lambda b: [bool(t.strip()) for t in b["text"]], batched=True, batch_size=10_000)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets wraps parser errors of pandas/pyarrow/json
        raise_read_error(exc, path, source, suffix)
    if "__index_level_0__" in ds.column_names:
        raise DataError(f"data file '{source}': some rows have more fields than the header row "
                        f"({len(ds.column_names) - 1} columns); check the delimiter or quote characters")
    if len(ds) == 0:
        raise DataError(f"data file '{source}' is empty (no rows after the header)")
    return ds
