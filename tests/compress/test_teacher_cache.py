"""The teacher cache shared by concurrent processes: writers of one rank never share a shard, damaged records are
detected by their checksum and recomputed, meta.json creation races never crash, and `edgepress cache verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from compress.cli.main import main
from compress.distill.cache import (HIDDEN_FILE, META_FILE, ROWS_FILE, TeacherCache, record_dtype, text_key,
                                    verify_cache)
from compress.core.errors import EdgepressError

ROOT = Path(__file__).resolve().parents[2]
H = 4  # width of the hand-written caches below


def _row(key: int, width: int = H) -> np.ndarray:
    """A row's hidden states, derived from its key (so any reader knows what a key must read back)."""
    rng = np.random.default_rng(key % 2**32)
    return rng.standard_normal((1 + key % 7, width)).astype(np.float16)


def _emb(keys: list[int]) -> np.ndarray:
    return np.array([[k % 11] * H for k in keys], dtype=np.float32)


def _write(cache: TeacherCache, keys: list[int]) -> None:
    cache.write(keys, [_row(k) for k in keys], _emb(keys), np.array([[k, -k] for k in keys], np.float32))


def _reads_back(cache: TeacherCache, keys: list[int]) -> None:
    for k, got in zip(keys, cache.lookup(keys)):
        assert got is not None, k
        np.testing.assert_array_equal(got[0], _row(k))
        np.testing.assert_array_equal(got[1], _emb([k])[0])
        np.testing.assert_array_equal(got[2], [k, -k])


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run_together(script: str, args: list[list[str]], cwd: Path, timeout: int = 300) -> list[str]:
    """Start one ``python script`` per argument list at once; each child's stdout, after all exit 0."""
    path = cwd / "child.py"
    path.write_text(textwrap.dedent(script))
    procs = [subprocess.Popen([sys.executable, str(path), *a], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for a in args]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outs]


BARRIER = '''
    import os, sys, time
    from pathlib import Path

    def barrier(gate: Path, n: int) -> None:
        """Wait until n processes reached this point (each leaves a file in gate)."""
        gate.mkdir(exist_ok=True)
        (gate / str(os.getpid())).touch()
        t0 = time.monotonic()
        while len(list(gate.iterdir())) < n:
            if time.monotonic() - t0 > 120:
                sys.exit("barrier timed out")
            time.sleep(0.005)
'''


# ---------------------------------------------------------------- writers of one rank


def test_two_writers_of_one_rank_in_one_process_get_their_own_shards(tmp_path):
    a = TeacherCache(tmp_path, "k", hidden=H, n_logits=2, max_bytes=1 << 20, rank=0)
    b = TeacherCache(tmp_path, "k", hidden=H, n_logits=2, max_bytes=1 << 20, rank=0)
    assert (a.shard_dir.name, b.shard_dir.name) == ("shard-0", "shard-0-1")
    for j in range(6):  # interleaved appends: each one's offsets must stay its own
        _write(a, [100 + j, 200 + j])
        _write(b, [300 + j])
    keys = [100 + j for j in range(6)] + [200 + j for j in range(6)] + [300 + j for j in range(6)]
    _reads_back(a, keys)
    _reads_back(b, keys)
    a.close()
    c = TeacherCache(tmp_path, "k", hidden=H, n_logits=2, max_bytes=1 << 20, rank=0)
    assert c.shard_dir.name == "shard-0"  # a's lock went with close(): its shard is taken over
    _write(c, [400])
    _reads_back(c, keys + [400])
    b.close(), c.close()
    report = verify_cache(tmp_path)
    assert report.clean and report.records == 19 and report.folders[0].shards == 2


WRITER = BARRIER + '''
    import random
    import numpy as np
    from compress.distill.cache import TeacherCache

    folder, name, gate, n = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])

    def row(key):
        return np.random.default_rng(key % 2**32).standard_normal((1 + key % 7, 4)).astype(np.float16)

    cache = TeacherCache(folder, "k", hidden=4, n_logits=0, max_bytes=1 << 24, rank=0)
    barrier(gate, n)
    rnd = random.Random(name)
    mine = [name * 1000 + j for j in range(40)]
    for i in range(0, len(mine), 2):
        keys = mine[i:i + 2]
        cache.write(keys, [row(k) for k in keys], np.zeros((len(keys), 4), np.float32), None)
        time.sleep(rnd.random() * 0.004)
    cache.refresh()
    seen = 0  # every row any writer added so far reads back as its own
    for k in [w * 1000 + j for w in range(n) for j in range(40)]:
        got = cache.lookup([k])[0]
        if got is not None:
            assert np.array_equal(got[0], row(k)), k
            seen += 1
    print(cache.shard_dir.name, seen)
    cache.close()
'''


def test_writer_processes_of_one_rank_never_mix_rows(tmp_path):
    n = 3
    outs = _run_together(WRITER, [[str(tmp_path / "cache"), str(w), str(tmp_path / "gate"), str(n)] for w in range(n)],
                         tmp_path)
    shards = sorted(o.split()[0] for o in outs)
    assert shards == ["shard-0", "shard-0-1", "shard-0-2"]  # one shard per live writer
    assert all(int(o.split()[1]) >= 40 for o in outs)
    reader = TeacherCache(tmp_path / "cache", "k", hidden=4, n_logits=0, max_bytes=0, writable=False)
    keys = [w * 1000 + j for w in range(n) for j in range(40)]
    got = reader.lookup(keys)
    for k, g in zip(keys, got):
        np.testing.assert_array_equal(g[0], _row(k))
    assert len(reader) == 120 and reader.stats.corrupt == 0
    assert verify_cache(tmp_path / "cache").clean


KILLED = '''
    import os, signal, sys
    import numpy as np
    from pathlib import Path
    from compress.distill.cache import ROWS_FILE, TeacherCache

    cache = TeacherCache(Path(sys.argv[1]), "k", hidden=4, n_logits=0, max_bytes=1 << 20, rank=0)
    cache.write([5], [np.ones((3, 4), np.float16)], np.ones((1, 4), np.float32), None)
    with open(cache.shard_dir / ROWS_FILE, "ab") as fh:
        fh.write(b"\\x01\\x02\\x03")  # killed in the middle of its next record
    os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_killed_writers_shard_is_taken_over_and_its_torn_record_dropped(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(KILLED))
    res = subprocess.run([sys.executable, str(path), str(tmp_path)], env=_env(), capture_output=True, timeout=120)
    assert res.returncode == -9, res.stderr[-2000:]
    report = verify_cache(tmp_path)
    assert report.clean and report.folders[0].torn_bytes == 3
    c = TeacherCache(tmp_path, "k", hidden=4, n_logits=0, max_bytes=1 << 20, rank=0)
    assert c.shard_dir.name == "shard-0"  # the dead process's lock died with it
    rows = c.shard_dir / ROWS_FILE
    assert rows.stat().st_size == c.dtype.itemsize
    c.write([6], [np.zeros((2, 4), np.float16)], np.zeros((1, 4), np.float32), None)
    assert c.lookup([5])[0][0].shape == (3, 4) and c.lookup([6])[0][0].shape == (2, 4)
    c.close()
    assert verify_cache(tmp_path).folders[0].torn_bytes == 0


# ---------------------------------------------------------------- meta.json: concurrent creators


def test_many_threads_creating_one_cache_never_crash(tmp_path):
    n, errors, caches = 12, [], []
    start = threading.Barrier(n)

    def make() -> None:
        try:
            start.wait()
            c = TeacherCache(tmp_path, "k", hidden=H, n_logits=0, max_bytes=1 << 20, rank=0,
                             describe={"task": "embedding"})
            caches.append(c)
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({c.shard_dir for c in caches}) == n
    for i, c in enumerate(caches):
        c.write([i], [_row(i)], _emb([i]), None)
    for c in caches:
        c.close()
    meta = json.loads((tmp_path / "k" / META_FILE).read_text())
    assert meta["hidden"] == H and meta["layout"] == 2
    assert not [p.name for p in (tmp_path / "k").iterdir() if p.name.endswith(".tmp")]
    assert verify_cache(tmp_path).records == n


CREATOR = BARRIER + '''
    from compress.distill.cache import TeacherCache

    barrier(Path(sys.argv[2]), int(sys.argv[3]))
    for i in range(5):  # create, and re-open what another process may be creating
        TeacherCache(Path(sys.argv[1]), f"k{i}", hidden=4, n_logits=2, max_bytes=1 << 20, rank=0).close()
    print("ok")
'''


def test_many_processes_creating_one_cache_never_crash(tmp_path):
    n = 4
    outs = _run_together(CREATOR, [[str(tmp_path / "c"), str(tmp_path / "gate"), str(n)]] * n, tmp_path)
    assert [o.strip() for o in outs] == ["ok"] * n
    for i in range(5):
        assert json.loads((tmp_path / "c" / f"k{i}" / META_FILE).read_text())["n_logits"] == 2
    assert verify_cache(tmp_path / "c").clean


# ---------------------------------------------------------------- damaged records


def _record_of(folder: Path, key: int, width: int, n_logits: int) -> tuple[Path, int, np.void]:
    """(shard, index, record) of the first record of ``key`` under a teacher-key folder."""
    dtype = record_dtype(width, n_logits)
    for shard in sorted(folder.glob("shard-*")):
        recs = np.fromfile(shard / ROWS_FILE, dtype=dtype)
        where = np.flatnonzero(recs["key"] == key)
        if len(where):
            return shard, int(where[0]), recs[where[0]]
    raise AssertionError(f"key {key} not in {folder}")


def _damage(folder: Path, key: int, how: str, width: int = H, n_logits: int = 2) -> None:
    """Flip a byte of a row's hidden states, of its record's embedding, or move its offset past the file."""
    shard, i, rec = _record_of(folder, key, width, n_logits)
    dtype = record_dtype(width, n_logits)
    if how == "hidden":
        path, at = shard / HIDDEN_FILE, int(rec["off"]) * 2 * width + 3
    elif how == "emb":
        path, at = shard / ROWS_FILE, i * dtype.itemsize + dtype.fields["emb"][1] + 1
    else:
        path, at = shard / ROWS_FILE, i * dtype.itemsize + dtype.fields["off"][1] + 5
    with path.open("r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0x5A]))


def test_damaged_records_are_misses_counted_once_and_rewritten(tmp_path, capsys):
    keys = [1, 2, 3, 4, 5]
    w = TeacherCache(tmp_path, "k", hidden=H, n_logits=2, max_bytes=1 << 20, rank=1)
    _write(w, keys)
    w.close()
    folder = tmp_path / "k"
    for key, how in ((2, "hidden"), (3, "emb"), (4, "off")):
        _damage(folder, key, how)
    before = verify_cache(tmp_path)
    assert not before.clean and before.records == 5
    assert sorted((b.key, b.reason, b.superseded) for b in before.bad) == [
        (2, "checksum", False), (3, "checksum", False), (4, "bounds", False)]

    c = TeacherCache(tmp_path, "k", hidden=H, n_logits=2, max_bytes=1 << 20, rank=0)
    got = c.lookup(keys)
    assert [g is not None for g in got] == [True, False, False, False, True]
    _reads_back(c, [1, 5])
    assert c.lookup([2, 3, 4]) == [None, None, None]  # known bad: still misses, not counted twice
    assert c.metrics()["teacher_cache_corrupt"] == 3
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and f"'{tmp_path / 'k'}' is damaged" in err  # once per cache, naming it
    _write(c, [2, 3, 4])  # what the trainer does with misses: recompute and append
    _reads_back(c, keys)
    c.close()

    after = verify_cache(tmp_path)  # the damaged records stay on disk, each superseded by a sound copy
    assert after.clean and len(after.bad) == 3 and all(b.superseded for b in after.bad)
    fresh = TeacherCache(tmp_path, "k", hidden=H, n_logits=2, max_bytes=0, writable=False)
    _reads_back(fresh, keys)  # shard-0 (sound copies) sorts before shard-1 (damaged): the sound copy is served
    assert fresh.stats.corrupt == 3 and len(fresh) == 5


def test_old_layout_folders_are_refused_with_a_delete_hint(tmp_path):
    folder = tmp_path / "teacher" / "oldkey"
    (folder / "shard-0").mkdir(parents=True)
    (folder / META_FILE).write_text(json.dumps({"hidden": H, "n_logits": 0, "record_bytes": 36}))
    (folder / "shard-0" / ROWS_FILE).write_bytes(bytes(72))
    with pytest.raises(EdgepressError, match="layout 1, this edgepress reads layout 2; delete that folder"):
        TeacherCache(tmp_path / "teacher", "oldkey", hidden=H, n_logits=0, max_bytes=1 << 20)
    report = verify_cache(tmp_path)
    assert not report.clean and "record layout 1" in report.folders[0].problem


# ---------------------------------------------------------------- `edgepress cache verify`


def test_cache_verify_command_exit_codes_and_table(tmp_path, capsys):
    c = TeacherCache(tmp_path / "teacher", "k", hidden=H, n_logits=2, max_bytes=1 << 20)
    _write(c, [7, 8, 9])
    c.close()
    main(["cache", "verify", str(tmp_path)])  # clean: returns, exit status 0
    out = capsys.readouterr().out
    assert "clean: 3 records checked" in out and "ok" in out
    _damage(tmp_path / "teacher" / "k", 8, "hidden")
    with pytest.raises(SystemExit) as exc:
        main(["cache", "verify", str(tmp_path / "teacher" / "k")])
    out = capsys.readouterr().out
    assert exc.value.code == 1
    assert "record 1: key 8 failed its checksum check" in out and "not clean" in out and "Traceback" not in out
    with pytest.raises(SystemExit) as exc:
        main(["cache", "verify", str(tmp_path / "missing")])
    assert exc.value.code == 1 and "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["cache", "verify", str(tmp_path / "empty")])
    assert exc.value.code == 1 and "holds no teacher cache" in capsys.readouterr().err


# ---------------------------------------------------------------- distillation on a damaged / shared cache


def test_distillation_recomputes_damaged_rows(tiny_model_dir, tmp_path):
    from compress.data.rows import TextData, builtin_pydoc_sentences
    from compress.distill.config import DistillConfig, LossWeights
    from compress.distill.engine import distill_model
    from compress.distill.student import student_from_teacher
    from compress.model.loading import load_model, load_tokenizer

    path = tiny_model_dir("bert", "mlm")
    teacher, tok = load_model(str(path), "embedding"), load_tokenizer(str(path))
    data = TextData(builtin_pydoc_sentences()[:32])
    cfg = DistillConfig(batch_size=8, epochs=1, learning_rate=5e-3, warmup_ratio=0.0, logging_steps=2,
                        loss=LossWeights(cos=1.0, embed_mse=1.0))

    def train(out: str) -> dict:
        student, picked = student_from_teacher(teacher, num_layers=1)
        for p in student.parameters():
            p.requires_grad_(True)
        return distill_model(teacher, student, tok, data, None, "embedding", cfg, 32, tmp_path / out, 0,
                             picked_layers=picked, save_checkpoints=False, cache_dir=tmp_path / "cache").metrics

    cold = train("cold")
    assert cold["teacher_cache_written"] == 32 and cold["teacher_cache_corrupt"] == 0
    (folder,) = (tmp_path / "cache" / "teacher").iterdir()
    damaged = [text_key(t) for t in data.texts[3:6]]
    for key, how in zip(damaged, ("hidden", "emb", "off")):
        _damage(folder, key, how, width=32, n_logits=0)
    assert len(verify_cache(tmp_path / "cache").bad) == 3

    warm = train("warm")
    assert warm["teacher_cache_corrupt"] == 3 and warm["teacher_cache_misses"] == 3
    assert warm["teacher_cache_written"] == 3 and warm["teacher_cache_hits"] == 29
    assert warm["train_loss"] == pytest.approx(cold["train_loss"], rel=1e-5)  # recomputed == what was cached
    report = verify_cache(tmp_path / "cache")
    assert report.clean and len(report.bad) == 3 and all(b.superseded for b in report.bad)
    again = train("again")  # the sound copies are newer: served first, the damaged ones never read again
    assert again["teacher_cache_hits"] == 32 and again["teacher_cache_corrupt"] == 0


GATED_CLI = BARRIER + '''
    import compress.distill.cache as cache

    gate, n = Path(sys.argv[1]), int(sys.argv[2])

    class Gated(cache.TeacherCache):
        """Opens the shared cache, then waits for the other run: both start training on the same empty cache. The
        first write waits for the other run's first write too, so both write: without it, a run that is one batch
        ahead fills every row the other then only reads."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            barrier(gate, n)
            self._first_write = True

        def write(self, *args, **kwargs):
            if self._first_write and self.writable:
                self._first_write = False
                barrier(Path(str(gate) + "-write"), n)
            return super().write(*args, **kwargs)

    cache.TeacherCache = Gated
    from compress.cli.main import main

    main(sys.argv[3:])
'''


def _student(out: Path) -> dict:
    from safetensors.numpy import load_file

    # BERT's pooler is not part of an embedding student's output, and a headless load initialises it randomly:
    # two solo runs differ there too
    return {k: v for k, v in load_file(out / "model" / "model.safetensors").items() if not k.startswith("pooler.")}


def test_two_distillations_sharing_one_cache_equal_a_solo_run(tiny_bert_dir, tmp_path):
    """The issue's case: two runs at once on one distill.cache_dir, both rank 0. Each student equals a solo run's,
    a later run that only reads the shared cache does too, and `edgepress cache verify` finds it clean."""
    texts = tmp_path / "texts.txt"
    from compress.data.rows import builtin_pydoc_sentences

    texts.write_text("\n".join(builtin_pydoc_sentences()[:64]) + "\n")

    def args(out: str, cache: str) -> list[str]:
        return ["distill", str(tiny_bert_dir), str(tmp_path / out), "--data", str(texts), "--layers", "1",
                "--set", "task=embedding", "--set", "distill.max_steps=16", "--set", "distill.batch_size=8",
                "--set", f"distill.cache_dir={tmp_path / cache}"]

    _run_together(GATED_CLI, [[str(tmp_path / "gate"), "2", *args(out, "shared")] for out in ("a", "b")], tmp_path,
                  timeout=600)
    main(args("solo", "solo-cache"))
    solo = _student(tmp_path / "solo")
    (folder,) = (tmp_path / "shared" / "teacher").iterdir()
    for out in ("a", "b"):
        metrics = json.loads((tmp_path / out / "stage.json").read_text())["metrics"]
        assert metrics["teacher_cache_written"] > 0 and metrics["teacher_cache_corrupt"] == 0  # both wrote
        got = _student(tmp_path / out)
        assert got.keys() == solo.keys()
        for k in solo:  # equal in practice; before the fix, rows read from a mixed-up shard moved them by ~5e-4
            np.testing.assert_allclose(got[k], solo[k], rtol=0, atol=1e-5, err_msg=f"{out}: {k}")
    assert sorted(p.name for p in folder.glob("shard-*")) == ["shard-0", "shard-0-1"]  # one shard per run
    (solo_folder,) = (tmp_path / "solo-cache" / "teacher").iterdir()
    assert solo_folder.name == folder.name
    keys = np.fromfile(solo_folder / "shard-0" / ROWS_FILE, dtype=record_dtype(32, 0))["key"].tolist()
    ref, shared = (TeacherCache(f.parent, f.name, hidden=32, n_logits=0, max_bytes=0, writable=False)
                   for f in (solo_folder, folder))
    for k, mine, theirs in zip(keys, shared.lookup(keys), ref.lookup(keys)):  # every row holds its own states
        np.testing.assert_allclose(mine[0].astype(np.float32), theirs[0].astype(np.float32), rtol=1e-3, atol=1e-3,
                                   err_msg=str(k))
    main(args("reader", "shared"))  # a later run on the shared cache: every row read, none computed
    metrics = json.loads((tmp_path / "reader" / "stage.json").read_text())["metrics"]
    assert metrics["teacher_cache_misses"] == 0 and metrics["teacher_cache_corrupt"] == 0
    reader = _student(tmp_path / "reader")
    for k in solo:
        np.testing.assert_allclose(reader[k], solo[k], rtol=0, atol=1e-5, err_msg=k)
    main(["cache", "verify", str(tmp_path / "shared")])  # returns: exit status 0, a clean cache
    assert verify_cache(tmp_path / "shared").clean
