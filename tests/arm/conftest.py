"""The emulated aarch64 device (tests/arm/emulated.py), built or reused once per session and served on 127.0.0.1.

Without qemu-user-static/debootstrap, root, or the Debian mirror, every test here skips with the one-line reason.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def emulated_python():
    from tests.arm.emulated import EmulatorUnavailable, build

    try:
        return build()
    except EmulatorUnavailable as exc:
        pytest.skip(f"emulated aarch64 device unavailable: {exc}")


@pytest.fixture(scope="session")
def arm_device(emulated_python, tmp_path_factory):
    """An EmulatedDevice: ``.target`` (ssh://edgepress@127.0.0.1:PORT), ``.options()`` (verified host key)."""
    pytest.importorskip("asyncssh", reason="pip install asyncssh for the emulated SSH device")
    from tests.arm.emulated import EmulatedDevice

    with EmulatedDevice(emulated_python, tmp_path_factory.mktemp("arm-device")) as dev:
        yield dev


@pytest.fixture(scope="session")
def tiny_onnx_pair(tmp_path_factory):
    """A tiny BERT embedding model as ONNX fp32 and its dynamic INT8 (ONNX Runtime), built once."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from tests.benchmarks.helpers import export_onnx
    from tests.tiny import make_tiny_model

    d = tmp_path_factory.mktemp("arm-models")
    fp32 = export_onnx(make_tiny_model(d / "m", "bert", "embedding"), "embedding", d / "tiny.onnx")
    int8 = d / "tiny.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return d / "m", fp32, int8


@pytest.fixture(scope="session")
def wide_onnx_pair(tmp_path_factory):
    """One BERT layer at MiniLM's width (hidden 384, FFN 1536), random weights, as ONNX fp32 and dynamic INT8.

    Wide enough for onnxruntime's packed INT8 GEMM kernels, which the tiny model's 32-wide MatMuls never reach
    (under qemu's default CPU model those gave outputs unrelated to x86's; see tests/arm/emulated.py).
    """
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import BertConfig, BertModel

    from tests.benchmarks.helpers import export_onnx

    d = tmp_path_factory.mktemp("arm-wide")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=1000, hidden_size=384, num_hidden_layers=1, num_attention_heads=12,
                         intermediate_size=1536, max_position_embeddings=64)).save_pretrained(d / "m")
    fp32 = export_onnx(d / "m", "embedding", d / "wide.onnx")
    int8 = d / "wide.int8.onnx"
    # 7-bit weights (reduce_range): on AVX2 hosts without VNNI, onnxruntime's U8S8 kernels saturate full-range
    # products (0.003 off aarch64's exact int32 dot products at this width); with reduce_range both are exact
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, reduce_range=True)
    return fp32, int8
