"""Corpus-scale distillation: the disk teacher cache, Arrow training rows, lazy fill, warm re-runs, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.data.rows import (TextData, builtin_pydoc_sentences, distillation_dataset, distillation_texts,
                           load_distill_splits, load_splits, unlabeled_corpora,
                           with_unlabeled)
from compress.distill.cache import ROWS_FILE, TeacherCache, text_key
from compress.distill.config import DistillConfig, LossWeights
from compress.distill.engine import distill_model
from compress.distill.student import student_from_teacher
from compress.model.loading import load_model, load_tokenizer


def _rows(n_tokens: int, h: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_tokens, h)).astype(np.float16)


# ---------------------------------------------------------------- the cache itself


def test_cache_round_trip_across_shards_and_runs(tmp_path):
    a = TeacherCache(tmp_path, "k", hidden=4, n_logits=2, max_bytes=1 << 20, rank=0)
    b = TeacherCache(tmp_path, "k", hidden=4, n_logits=2, max_bytes=1 << 20, rank=1)
    a.write([11, 12], [_rows(3, seed=1), _rows(5, seed=2)], np.ones((2, 4), np.float32), np.full((2, 2), 7, np.float32))
    b.write([21], [_rows(2, seed=3)], np.zeros((1, 4), np.float32), np.zeros((1, 2), np.float32))
    got = b.lookup([11, 21, 99])  # rank 1 sees what rank 0 wrote
    assert got[2] is None
    np.testing.assert_array_equal(got[0][0], _rows(3, seed=1))
    np.testing.assert_array_equal(got[0][2], [7, 7])
    np.testing.assert_array_equal(got[1][0], _rows(2, seed=3))
    a.close(), b.close()
    again = TeacherCache(tmp_path, "k", hidden=4, n_logits=2, max_bytes=0, rank=0, writable=False)
    assert len(again) == 3 and again.lookup([12])[0][0].shape == (5, 4)
    assert (tmp_path / "k" / "shard-0" / ROWS_FILE).is_file() and (tmp_path / "k" / "shard-1").is_dir()


def test_cache_drops_a_torn_record_and_stops_at_its_bound(tmp_path):
    c = TeacherCache(tmp_path, "k", hidden=4, n_logits=0, max_bytes=1 << 20, rank=0)
    c.write([1], [_rows(3)], np.ones((1, 4), np.float32), None)
    c.close()
    rows = tmp_path / "k" / "shard-0" / ROWS_FILE
    with rows.open("ab") as fh:  # a run killed in the middle of a record
        fh.write(b"\x01\x02\x03")
    c = TeacherCache(tmp_path, "k", hidden=4, n_logits=0, max_bytes=1 << 20, rank=0)
    assert rows.stat().st_size == c.dtype.itemsize and len(c) == 1
    c.write([2], [_rows(2)], np.ones((1, 4), np.float32), None)
    assert c.lookup([1, 2])[1] is not None
    c.close()
    small = TeacherCache(tmp_path, "k2", hidden=4, n_logits=0, max_bytes=400, rank=0)
    for k in range(10):
        small.write([100 + k], [_rows(8)], np.ones((1, 4), np.float32), None)
    assert 0 < small.stats.written < 10 and small.stats.skipped_full == 10 - small.stats.written
    assert small.size_bytes() <= 400


def test_cache_refuses_rows_of_another_shape(tmp_path):
    TeacherCache(tmp_path, "k", hidden=4, n_logits=0, max_bytes=1 << 20).close()
    with pytest.raises(Exception, match="another shape"):
        TeacherCache(tmp_path, "k", hidden=8, n_logits=0, max_bytes=1 << 20)


# ---------------------------------------------------------------- Arrow rows: the same rows as the list path


def _data_cfg(tmp_path, unlabeled=True, **kw):
    from compress.config import DataConfig

    train = tmp_path / "train.tsv"
    sents = builtin_pydoc_sentences()[:60]
    train.write_text("sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(sents + sents[:5])))
    extra = tmp_path / "extra.txt"
    extra.write_text("\n".join(sents[10:20] + ["", "   "] + builtin_pydoc_sentences()[60:90]) + "\n")
    return DataConfig(train=str(train), label_column="label", eval_fraction=0.2,
                      unlabeled=[{"source": str(extra)}] if unlabeled else [], **kw)


def test_streamed_splits_and_rows_match_the_list_path(tmp_path):
    cfg = _data_cfg(tmp_path)
    old = load_splits(cfg, "embedding", seed=3)
    new = load_distill_splits(cfg, "embedding", 3, tmp_path / "cache")
    assert new.eval.texts == old.eval.texts and new.eval.labels == old.eval.labels
    assert new.train["text"] == old.train.texts
    extra = unlabeled_corpora(cfg, tmp_path / "cache")
    ds = distillation_dataset(cfg, "embedding", new.train, extra)
    assert ds["text"] == distillation_texts(old.train, extra)
    assert ds["key"] == [text_key(t) for t in ds["text"]]
    assert (tmp_path / "cache").is_dir() and any((tmp_path / "cache").rglob("*.arrow"))  # on disk, memory-mapped


def test_classification_rows_match_with_unlabeled(tmp_path):
    cfg = _data_cfg(tmp_path)
    splits = load_distill_splits(cfg, "classification", 0, tmp_path / "cache")
    extra = unlabeled_corpora(cfg, tmp_path / "cache")
    ds = distillation_dataset(cfg, "classification", splits.train, extra)
    ref = with_unlabeled(cfg, splits.train, extra)
    assert ds["text"] == ref.texts and ds["labels"] == ref.labels


# ---------------------------------------------------------------- training with the cache


def _setup(tiny_model_dir, n=200):
    path = tiny_model_dir("bert", "mlm")
    teacher = load_model(str(path), "embedding")
    tok = load_tokenizer(str(path))
    return teacher, tok, TextData(builtin_pydoc_sentences()[:n])


def _student(teacher):
    """A 1-layer student copied from the teacher, trainable (distill_model freezes the teacher it gets)."""
    student, picked = student_from_teacher(teacher, num_layers=1)
    for p in student.parameters():
        p.requires_grad_(True)
    return student, picked


def _cfg(**kw):
    base = dict(batch_size=8, learning_rate=5e-3, warmup_ratio=0.0, logging_steps=2,
                loss=LossWeights(cos=1.0, embed_mse=1.0))
    return DistillConfig(**{**base, **kw})


def test_cache_fills_lazily_and_a_warm_rerun_skips_the_teacher(tiny_model_dir, tmp_path):
    teacher, tok, data = _setup(tiny_model_dir)
    student, picked = _student(teacher)
    lazy = distill_model(teacher, student, tok, data, None, "embedding", _cfg(max_steps=2), 32, tmp_path / "a", 0,
                         picked_layers=picked, save_checkpoints=False, cache_dir=tmp_path / "cache")
    assert lazy.metrics["teacher_cache_rows"] == 16 < len(data)  # only the rows training met
    runs = []
    for name in ("cold", "warm"):  # one epoch each, the same seed: the warm run finds every row
        student, picked = _student(teacher)
        runs.append(distill_model(teacher, student, tok, data, None, "embedding", _cfg(max_steps=25), 32,
                                  tmp_path / name, 0, picked_layers=picked, save_checkpoints=False,
                                  cache_dir=tmp_path / "cache").metrics)
    cold, warm = runs
    assert cold["teacher_cache_misses"] > 0 and cold["teacher_cache_rows"] == len(data)
    assert warm["teacher_cache_misses"] == 0 and warm["teacher_cache_hits"] == 200
    assert warm["teacher_forward_seconds"] == 0.0
    assert warm["train_loss"] == pytest.approx(cold["train_loss"], rel=1e-5)  # cached outputs == computed ones


def test_cached_outputs_equal_the_teacher_on_the_fly(tiny_model_dir, tmp_path):
    teacher, tok, data = _setup(tiny_model_dir, 64)
    losses = []
    for max_gb in (0.0, 1.0, 1.0):  # no cache, cold cache, warm cache
        student, picked = _student(teacher)
        out = distill_model(teacher, student, tok, data, None, "embedding", _cfg(max_steps=8, cache_max_gb=max_gb), 32,
                            tmp_path / f"r{len(losses)}", 0, picked_layers=picked, save_checkpoints=False,
                            cache_dir=tmp_path / "cache")
        losses.append(out.metrics["train_loss"])
    assert losses[1] == pytest.approx(losses[2], rel=1e-6)
    assert losses[0] == pytest.approx(losses[1], rel=1e-2)  # fp16 rounding of the cached hidden states only


def test_qat_style_caller_reads_the_run_cache_without_writing(tiny_model_dir, tmp_path):
    teacher, tok, data = _setup(tiny_model_dir, 32)
    student, picked = _student(teacher)
    run = tmp_path / "runs" / "x"
    distill_model(teacher, student, tok, data, None, "embedding", _cfg(max_steps=4), 32, run / "02-distill", 0,
                  picked_layers=picked, save_checkpoints=False, cache_dir=run / ".cache")
    student, picked = _student(teacher)
    before = sorted(p.stat().st_size for p in (run / ".cache").rglob("*") if p.is_file())
    out = distill_model(teacher, student, tok, TextData(data.texts[:16]), None, "embedding", _cfg(max_steps=2), 32,
                        run / ".05-quantize.tmp" / "_work" / "qat", 0, picked_layers=picked, save_checkpoints=False)
    assert out.metrics["teacher_cache_hits"] == 16 and out.metrics["teacher_cache_written"] == 0
    assert sorted(p.stat().st_size for p in (run / ".cache").rglob("*") if p.is_file()) == before


class _Interrupt(Exception):
    pass


def test_killed_mid_epoch_resumes_to_the_same_student(tiny_model_dir, tmp_path, monkeypatch):
    from transformers import TrainerCallback

    from compress.distill import engine

    teacher, tok, data = _setup(tiny_model_dir, 96)
    cfg = _cfg(max_steps=10, save_steps=4)

    def train(ckpt, cache):
        torch.manual_seed(0)
        student, picked = _student(teacher)
        return distill_model(teacher, student, tok, data, None, "embedding", cfg, 32, tmp_path, 0,
                             checkpoint_dir=ckpt, picked_layers=picked, cache_dir=cache)

    whole = train(tmp_path / "ck-whole", tmp_path / "cache-whole")

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6:  # after the step-4 checkpoint, mid-epoch (12 batches an epoch)
                raise _Interrupt

    build = engine.DistillationTrainer.build

    def killing_build(**kw):
        t = build(**kw)
        t.add_callback(Kill())
        return t

    monkeypatch.setattr(engine.DistillationTrainer, "build", staticmethod(killing_build))
    with pytest.raises(_Interrupt):
        train(tmp_path / "ck-killed", tmp_path / "cache-killed")
    monkeypatch.setattr(engine.DistillationTrainer, "build", staticmethod(build))
    resumed = train(tmp_path / "ck-killed", tmp_path / "cache-killed")
    assert resumed.metrics["resumed_from"] == "checkpoint-4" and resumed.metrics["steps"] == 10
    assert resumed.metrics["rows_seen"] == 6 * 8  # only the steps after the checkpoint were drawn
    assert resumed.metrics["teacher_cache_hits"] == 2 * 8  # steps 5-6 were cached before the kill
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
