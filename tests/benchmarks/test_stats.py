"""Timing loop and statistics on a fake clock; sweep and realistic-mode shapes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness import BenchSettings, EvalSet, latency_points
from benchmarks.runners.base import Runner, Threads
from benchmarks.stats import measure, measure_rounds, percentile, summarize


class FakeClock:
    """Time advances only when a step 'runs' for its scripted duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_measure_warmup_then_until_both_runs_and_seconds():
    clock = FakeClock()
    calls: list[int] = []

    def step(i: int) -> None:
        calls.append(i)
        clock.now += 0.1  # every run takes 100 ms

    times = measure(step, warmup=3, min_runs=5, min_seconds=1.0, clock=clock)
    # 5 runs give only 0.5 s, so the loop continues to 10 runs (1.0 s); warm-up is untimed
    assert len(times) == 10
    assert len(calls) == 13
    assert sum(times) == pytest.approx(1.0)
    times = measure(step, warmup=0, min_runs=20, min_seconds=0.5, clock=clock)
    assert len(times) == 20  # the run count dominates here


def test_rounds_alternate_blocks_rotate_the_order_and_split_the_floors():
    clock = FakeClock()
    log: list[tuple[str, int]] = []

    def step(name: str, ms: float):
        def run(i: int) -> None:
            log.append((name, i))
            clock.now += ms / 1000
        return run

    times, failed = measure_rounds([step("a", 10), step("b", 20), step("c", 40)], rounds=3, warmup=1, min_runs=6,
                                   min_seconds=0.0, clock=clock)
    assert not failed and [len(t) for t in times] == [6, 6, 6]  # 3 blocks of ceil(6 / 3) = 2 runs each
    blocks = [name for k, (name, _) in enumerate(log) if k % 3 == 0]  # a block: 1 warm-up + 2 timed runs
    assert blocks == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # every round rotates the order
    assert [i for name, i in log if name == "a"] == list(range(9))  # call numbers run on across blocks
    assert times[1] == pytest.approx([0.02] * 6)

    # the seconds floor is split too: 0.3 s over 3 rounds = 0.1 s a block = 10 runs of 10 ms
    times, _ = measure_rounds([step("a", 10)], rounds=3, warmup=0, min_runs=1, min_seconds=0.3, clock=clock)
    assert len(times[0]) == 30


def test_a_failing_step_leaves_the_later_rounds_and_the_others_go_on():
    clock = FakeClock()
    calls = {"ok": 0, "bad": 0}

    def ok(i: int) -> None:
        calls["ok"] += 1
        clock.now += 0.001

    def bad(i: int) -> None:
        calls["bad"] += 1
        raise RuntimeError("session died")

    times, failed = measure_rounds([bad, ok], rounds=4, warmup=0, min_runs=4, min_seconds=0.0, clock=clock,
                                   failures=(RuntimeError,))
    assert list(failed) == [0] and str(failed[0]) == "session died"
    assert calls["bad"] == 1 and times[0] == [] and len(times[1]) == 4
    with pytest.raises(ValueError):  # an error not named in failures propagates
        measure_rounds([lambda i: (_ for _ in ()).throw(ValueError("x"))], rounds=2, warmup=0, min_runs=1,
                       min_seconds=0.0, clock=clock, failures=(RuntimeError,))


def test_summarize_matches_hand_and_numpy():
    durations = [0.010, 0.020, 0.030, 0.040, 0.100]  # seconds
    s = summarize(durations, batch_size=4)
    ms = np.array(durations) * 1000
    assert s["p50"] == pytest.approx(30.0)
    assert s["p90"] == pytest.approx(np.percentile(ms, 90))  # 76.0
    assert s["p90"] == pytest.approx(76.0)
    assert s["p99"] == pytest.approx(97.6)
    assert s["mean"] == pytest.approx(40.0)
    assert s["std"] == pytest.approx(np.std(ms, ddof=1))
    assert s["throughput"] == pytest.approx(4 / 0.030)
    assert s["runs"] == 5 and s["min"] == pytest.approx(10.0) and s["max"] == pytest.approx(100.0)
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        summarize([])


class ShapeRunner(Runner):
    """Records the input shapes it is run with and advances the fake clock by 1 ms per batch row."""

    backend = "fake"

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(path=".", task="embedding", threads=Threads(1, 1))
        self.clock = clock
        self.input_names = ["input_ids", "attention_mask", "token_type_ids"]
        self.shapes: list[tuple[int, int]] = []

    def load(self) -> None:
        pass

    def run(self, prepared):
        b, s = prepared["input_ids"].shape
        self.shapes.append((b, s))
        self.clock.now += 0.001 * b
        return None

    def outputs(self, prepared):
        return {}


def test_sweep_shapes_and_latency_scale_on_fake_clock():
    clock = FakeClock()
    runner = ShapeRunner(clock)
    settings = BenchSettings(batch_sizes=[1, 4], seq_lens=[16, 64], warmup=2, min_runs=3, min_seconds=0.0, rounds=1,
                             clock=clock)
    points = latency_points(runner, settings, vocab=500)
    assert [(p["batch"], p["seq"]) for p in points] == [(1, 16), (1, 64), (4, 16), (4, 64)]
    assert sorted(set(runner.shapes)) == [(1, 16), (1, 64), (4, 16), (4, 64)]
    assert len(runner.shapes) == 4 * (2 + 3)
    assert points[0]["latency_ms"]["p50"] == pytest.approx(1.0)
    assert points[2]["latency_ms"]["p50"] == pytest.approx(4.0)
    assert points[2]["latency_ms"]["throughput"] == pytest.approx(1000.0)


def test_realistic_mode_pads_each_batch_to_its_longest(tiny_model_dir):
    from compress.model.loading import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir("bert", "embedding")))
    texts = ["short one", "a somewhat longer sentence about the python language and its modules",
             "mid length sentence here", "x"]
    clock = FakeClock()
    runner = ShapeRunner(clock)
    settings = BenchSettings(batch_sizes=[2], realistic=True, realistic_batches=8, warmup=0, min_runs=8,
                             min_seconds=0.0, clock=clock, seed=3)
    points = latency_points(runner, settings, 500, tok, EvalSet(texts))
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    assert points[0]["seq"] == "realistic"
    assert all(b == 2 for b, _ in runner.shapes)
    assert {s for _, s in runner.shapes} <= set(lengths)  # padded to the longest row drawn, never to max_length
    assert len({s for _, s in runner.shapes}) >= 2
    assert min(lengths) <= points[0]["mean_padded_seq"] <= max(lengths)


class FailingRunner(ShapeRunner):
    """A ShapeRunner whose runtime fails after a few calls (a session that dies mid-measurement)."""

    def run(self, prepared):
        from compress.core.errors import EdgepressError

        if len(self.shapes) >= 2:  # the warm-up and one timed run go through
            raise EdgepressError("onnxruntime failed on 'bad.onnx': out of memory")
        return super().run(prepared)


def test_models_are_timed_in_alternating_rounds_and_a_failure_stays_with_its_model():
    from benchmarks.harness import ModelSpec, OpenModel, latency_timings, time_models

    clock = FakeClock()
    order: list[str] = []
    settings = BenchSettings(batch_sizes=[1], seq_lens=[16], warmup=1, min_runs=4, min_seconds=0.0, rounds=2,
                             clock=clock)
    models = []
    for name, cls in (("teacher", ShapeRunner), ("bad", FailingRunner), ("student", ShapeRunner)):
        runner = cls(clock)
        real_run = runner.run
        runner.run = lambda p, n=name, r=real_run: order.append(n) or r(p)
        models.append(OpenModel(ModelSpec(name, f"{name}.onnx"), {"status": "ok"}, runner,
                                points=latency_timings(runner, settings, 500)))
    time_models(models, settings)
    # blocks of 1 warm-up + 2 timed calls; round 1: teacher, bad (fails on its third call), student;
    # round 2 starts one further on (bad, student, teacher) and leaves bad out
    assert order == ["teacher"] * 3 + ["bad"] * 3 + ["student"] * 3 + ["student"] * 3 + ["teacher"] * 3
    assert models[1].entry == {"status": "error", "reason": "onnxruntime failed on 'bad.onnx': out of memory"}
    assert models[1].runner is None
    for m in (models[0], models[2]):
        assert m.points[0].record["latency_ms"]["runs"] == 4 and m.runner is not None


def test_an_embedding_model_is_timed_on_single_sentences_a_cross_encoder_on_pairs(tiny_model_dir):
    """STS pairs: a sentence-embedding model encodes each sentence alone (a pair is two calls), so its latency
    batches hold single sentences from both columns; a classifier of pairs reads them joined."""
    from benchmarks.harness import call_lengths, realistic_rows
    from compress.model.loading import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir("bert", "embedding")))
    ev = EvalSet(["first sentence one", "first sentence two"], ["second column a", "second column b"], [1.0, 4.0])
    rows = realistic_rows(ev, 4, 8, seed=0, task="embedding")
    drawn = {t for texts, pairs in rows for t in texts}
    assert all(pairs is None for _, pairs in rows) and drawn == set(ev.texts + ev.pairs)
    joined = realistic_rows(ev, 4, 8, seed=0, task="regression")
    assert all(pairs is not None and len(pairs) == len(texts) for texts, pairs in joined)
    single = call_lengths(tok, ev, 64, "embedding")
    pair = call_lengths(tok, ev, 64, "regression")
    assert len(single) == 4 and len(pair) == 2 and max(single) < min(pair)
