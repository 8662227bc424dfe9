"""LiteRT on a real aarch64 code path: `edgepress bench run model.tflite --target ssh://…` times a tiny model's
.tflite files in ai-edge-litert's aarch64 build under qemu, with outputs at parity with this machine's interpreter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.arm.bench import bench_on_device

SEQ = 16  # the bench's length and the parity feeds' (2 x 16): both run in the file's one bucket, len_24
MAX_LENGTH = 24


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A tiny BERT embedding model exported to LiteRT (fp32 + dynamic-range INT8), static bucket of 24 tokens."""
    pytest.importorskip("ai_edge_litert", reason="pip install 'edgepress[litert]' for the LiteRT interpreter")
    from export.api import export_model
    from export.errors import FormatUnavailableError
    from tests.tiny import make_tiny_model

    d = tmp_path_factory.mktemp("arm-litert")
    model = make_tiny_model(d / "m", "bert", "embedding")
    try:
        export_model(model, d / "out", "embedding", ["litert"], max_length=MAX_LENGTH)
    except FormatUnavailableError as exc:  # the converter's own virtualenv could not be created here
        pytest.skip(f"LiteRT converter unavailable: {exc}")
    return model, d / "out"


def test_litert_bench_on_aarch64_at_parity_with_x86(arm_device, emulated_python, tiny_tflite, tmp_path, capsys):
    import ai_edge_litert

    from benchmarks.remote import parity_feeds
    from benchmarks.remote_runner import LiteRTSession
    from compress.model.loading import load_tokenizer
    from export.parity import Tolerance

    model, out = tiny_tflite
    fp32, int8 = out / "litert" / "model.tflite", out / "litert" / "model_int8.tflite"
    assert emulated_python.info["ai_edge_litert"] == ai_edge_litert.__version__  # the device got the host's version
    report, remote, local = bench_on_device(arm_device, {"litert-fp32": fp32, "litert-int8": int8},
                                            out / "tokenizer", SEQ, "litert", tmp_path / "bench")
    assert report["devices"][arm_device.target]["versions"]["ai_edge_litert"] == ai_edge_litert.__version__
    for name, e in remote.items():
        assert e["runtime"]["ai_edge_litert"] == ai_edge_litert.__version__
        assert e["runtime"]["shapes"]["sequence_lengths"] == [MAX_LENGTH] and not e["runtime"]["shapes"]["truncated"]
        assert e["parity"]["reference"] == "local litert (x86_64)"
        assert set(e["parity"]["outputs"]) == {"last_hidden_state", "sentence_embedding"}

    # the parity reference is this machine's interpreter run exactly as the local runner runs a feed
    vocab = load_tokenizer(str(out / "tokenizer")).vocab_size
    feeds, reference = parity_feeds(fp32, vocab)
    local_runner = LiteRTSession(str(fp32), None)(feeds)
    assert all(np.array_equal(reference[k], local_runner[k]) for k in reference)
    layers = json.loads((model / "config.json").read_text())["num_hidden_layers"]
    tol = Tolerance(depth=layers)
    fp32_parity, int8_parity = remote["litert-fp32"]["parity"], remote["litert-int8"]["parity"]
    with capsys.disabled():
        print(f"\nLiteRT aarch64 (emulated) vs x86: fp32 max|diff| {fp32_parity['max_abs_diff']:.3g} "
              f"(cosine {fp32_parity['mean_cosine']:.7f}), INT8 max|diff| {int8_parity['max_abs_diff']:.3g} "
              f"(cosine {int8_parity['mean_cosine']:.7f}); emulated p50 fp32 "
              f"{remote['litert-fp32']['latency_ms']['p50']:.2f} ms, INT8 {remote['litert-int8']['latency_ms']['p50']:.2f} ms "
              f"(x86 {local['litert-fp32']['latency_ms']['p50']:.3f} / {local['litert-int8']['latency_ms']['p50']:.3f} ms)")
    for name, ref in reference.items():  # fp32: within the export tolerance (the bound PyTorch parity uses)
        allowed = tol.allowed(float(np.abs(ref).max()), SEQ)
        assert fp32_parity["outputs"][name]["max_abs_diff"] <= allowed, (name, allowed)
    assert fp32_parity["mean_cosine"] > 0.99999
    # dynamic-range INT8 quantizes activations at run time with each CPU's kernels (int32 accumulation in both;
    # measured 5e-7 apart on this tiny model): close, not asserted identical
    assert int8_parity["mean_cosine"] > 0.999 and int8_parity["max_abs_diff"] < 0.05
    md = (tmp_path / "bench" / "report.md").read_text()
    assert f"{arm_device.target} (Neoverse-N1, emulated)" in md
