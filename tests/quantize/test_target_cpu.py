"""The INT8 recipe follows the target device's CPU (quantize.target_cpu), not only this machine's."""

from __future__ import annotations

import json

from compress.quantize.api import quantize_onnx
from compress.quantize.config import QuantizeConfig
from compress.quantize.cpu import cpu_from_device_info, recommend_int8
from tests.quantize.helpers import export_tiny
from tests.quantize.test_quantize import FAST, _corpus

# what benchmarks.remote_runner.cpu_info() returns on a Neoverse-N1 and on an AVX2 laptop
ARM_RECORD = {"cpu": "Neoverse-N1", "arch": "aarch64", "cores": 4, "isa": ["asimd", "asimddp", "asimdhp", "dotprod", "fphp"]}
X86_RECORD = {"cpu": "Some Core", "arch": "x86_64", "cores": 8, "isa": ["avx2", "fma", "f16c"]}


def test_cpu_from_device_record_picks_each_devices_recipe():
    arm, x86 = cpu_from_device_info(ARM_RECORD), cpu_from_device_info(X86_RECORD)
    assert (arm.isa, x86.isa) == ("arm-dotprod", "avx2")
    ra, rx = recommend_int8(arm), recommend_int8(x86)
    assert (ra.activation_type, ra.reduce_range) == ("qint8", False)
    assert (rx.activation_type, rx.reduce_range) == ("quint8", True)
    vnni = cpu_from_device_info({**X86_RECORD, "isa": ["avx2", "avx512f", "avx512_vnni"]})
    assert vnni.isa == "avx512-vnni" and recommend_int8(vnni).reduce_range is False


def test_quantize_uses_the_target_cpu_and_says_so(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir("bert", "embedding")
    onnx_path = export_tiny(model_dir, "embedding", tmp_path / "model.onnx")
    tok = AutoTokenizer.from_pretrained(model_dir)
    target = {"source": "ssh://pi@board", "arch": "aarch64", "model": "Neoverse-N1", "flags": ARM_RECORD["isa"]}
    cfg = QuantizeConfig.model_validate({**json.loads(json.dumps(FAST)), "target_cpu": target})
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic"], tok, eval_data=_corpus(), config=cfg)
    assert report["cpu"]["isa"] == "arm-dotprod" and report["cpu"]["source"] == "ssh://pi@board"
    assert report["int8_recipe"]["chosen_for"] == "arm-dotprod (ssh://pi@board)"
    settings = report["methods"]["dynamic"]["attempts"][0]["settings"]
    assert settings["reduce_range"] is False and settings["weight_type"] == "qint8"
    here = quantize_onnx(onnx_path, tmp_path / "here", ["dynamic"], tok, eval_data=_corpus(),
                         config=QuantizeConfig.model_validate(json.loads(json.dumps(FAST))))
    assert here["cpu"]["source"] == "this machine" and here["int8_recipe"]["chosen_for"].endswith("(this machine)")
    assert QuantizeConfig.model_validate(cfg.model_dump(mode="json")) == cfg  # round-trips through JSON
