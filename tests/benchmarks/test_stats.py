"""Timing loop and statistics on a fake clock; sweep and realistic-mode shapes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness import BenchSettings, EvalSet, latency_points
from benchmarks.runners.base import Runner, Threads
from benchmarks.stats import measure, percentile, summarize


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
    settings = BenchSettings(batch_sizes=[1, 4], seq_lens=[16, 64], warmup=2, min_runs=3, min_seconds=0.0, clock=clock)
    points = latency_points(runner, settings, vocab=500)
    assert [(p["batch"], p["seq"]) for p in points] == [(1, 16), (1, 64), (4, 16), (4, 64)]
    assert sorted(set(runner.shapes)) == [(1, 16), (1, 64), (4, 16), (4, 64)]
    assert len(runner.shapes) == 4 * (2 + 3)
    assert points[0]["latency_ms"]["p50"] == pytest.approx(1.0)
    assert points[2]["latency_ms"]["p50"] == pytest.approx(4.0)
    assert points[2]["latency_ms"]["throughput"] == pytest.approx(1000.0)


def test_realistic_mode_pads_each_batch_to_its_longest(tiny_model_dir):
    from compress.models import load_tokenizer

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
