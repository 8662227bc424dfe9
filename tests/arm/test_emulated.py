"""The harness on a real aarch64 code path: onnxruntime's aarch64 build under qemu, reached over SSH on loopback."""

from __future__ import annotations

import json
import socket

import asyncssh
import pytest

from benchmarks.remote import RemoteError, probe_device, run_remote

QUICK = ["--batch", "1", "--seq", "8", "--warmup", "1", "--min-runs", "3", "--min-seconds", "0", "--threads", "1",
         "--vocab", "300"]


def test_probe_reports_aarch64_with_dotprod_and_chooses_the_arm_recipe(arm_device):
    from compress.quantize.cpu import cpu_from_device_info, recommend_int8

    info = probe_device(arm_device.target, arm_device.options())
    assert info["arch"] == "aarch64" and info["cpu"] == "Neoverse-N1"
    assert {"asimd", "asimddp", "dotprod", "fphp", "asimdhp"} <= set(info["isa"])
    assert not any(f.startswith("avx") for f in info["isa"])  # the host's x86 flags do not leak through
    assert info["emulated"] is True and info["emulator"].startswith("qemu-aarch64")
    assert info["versions"]["onnxruntime"] == __import__("onnxruntime").__version__
    cpu = cpu_from_device_info(info)
    recipe = recommend_int8(cpu)
    assert cpu.isa == "arm-dotprod"
    assert (recipe.weight_type, recipe.activation_type, recipe.reduce_range) == ("qint8", "qint8", False)


def test_serves_loopback_only_with_per_run_keys(arm_device):
    assert arm_device.listening and all(addr == "127.0.0.1" for addr, _ in arm_device.listening)
    assert arm_device.known_hosts.read_text().startswith(f"[127.0.0.1]:{arm_device.port} ssh-ed25519 ")
    assert arm_device.identity.stat().st_mode & 0o077 == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:  # this machine's outward address (no packet sent)
        try:
            u.connect(("10.255.255.255", 1))
            other = u.getsockname()[0]
        except OSError:
            other = "127.0.0.1"
    if other.startswith("127."):
        pytest.skip("this machine has no address besides loopback to try the port on")
    with socket.socket() as s:  # the port is not reachable on the machine's other addresses
        s.settimeout(2)
        assert s.connect_ex((other, arm_device.port)) != 0


def test_wrong_host_key_and_wrong_client_key_are_refused(arm_device, tiny_onnx_pair, tmp_path):
    _, fp32, _ = tiny_onnx_pair
    other = asyncssh.generate_private_key("ssh-ed25519")
    bad_hosts = tmp_path / "known_hosts"
    bad_hosts.write_text(f"[127.0.0.1]:{arm_device.port} {other.export_public_key().decode()}")
    before = len(arm_device.commands)
    with pytest.raises(RemoteError, match="does not match"):
        run_remote(arm_device.target, fp32, QUICK, arm_device.options(known_hosts=str(bad_hosts)))
    stranger = tmp_path / "id_other"
    other.write_private_key(str(stranger))
    with pytest.raises(RemoteError, match="refused authentication"):
        run_remote(arm_device.target, fp32, QUICK, arm_device.options(identity=str(stranger)))
    assert len(arm_device.commands) == before  # nothing ran on the device


def test_bench_fp32_and_int8_on_aarch64_with_parity(arm_device, tiny_onnx_pair, tmp_path):
    """Harness -> ssh:// -> qemu aarch64 onnxruntime: latency, the device record, outputs against x86."""
    from benchmarks.harness import BenchSettings, ModelSpec, benchmark
    from benchmarks.report import to_markdown, validate_report, write_report
    from benchmarks.runners.base import Threads

    model_dir, fp32, int8 = tiny_onnx_pair
    settings = BenchSettings(batch_sizes=[1], seq_lens=[16], realistic=False, warmup=1, min_runs=3, min_seconds=0.0,
                             threads=Threads(1, 1), max_length=32)
    specs = [ModelSpec("teacher", model_dir, "pytorch", "fp32", "teacher"), ModelSpec("student", fp32, "onnx", "fp32"),
             ModelSpec("student-int8", int8, "onnx", "int8")]
    report = benchmark(specs, "embedding", settings, tokenizer_path=str(model_dir), targets=[arm_device.target],
                       remote_options=arm_device.options())
    validate_report(report)
    dev = report["devices"][arm_device.target]
    assert dev["arch"] == "aarch64" and "asimddp" in dev["isa"] and dev["emulated"] is True
    assert report["devices"]["local"]["arch"] == "x86_64" and not report["devices"]["local"].get("emulated")
    remote = {e["name"]: e for e in report["models"] if e["target"] == arm_device.target}
    local = {e["name"]: e for e in report["models"] if e["target"] == "local"}
    assert set(remote) == {"student", "student-int8"}  # the PyTorch teacher runs here only
    for name, e in remote.items():
        assert e["status"] == "ok" and e["latency_ms"]["runs"] >= 3 and e["latency_ms"]["p50"] > 0
        assert e["latency_ms"]["p50"] != local[name]["latency_ms"]["p50"]  # measured there, not copied
        assert e["runtime"]["onnxruntime"] == dev["versions"]["onnxruntime"]
    fp32_parity, int8_parity = remote["student"]["parity"], remote["student-int8"]["parity"]
    print(f"\naarch64 vs x86 parity: fp32 max|diff| {fp32_parity['max_abs_diff']:.3g}, INT8 max|diff| "
          f"{int8_parity['max_abs_diff']:.3g}, INT8 cosine {int8_parity['mean_cosine']:.6f}")
    assert fp32_parity["max_abs_diff"] <= 1e-4 and fp32_parity["mean_cosine"] > 0.999999
    assert set(fp32_parity["outputs"]) == {"last_hidden_state", "sentence_embedding"}
    # INT8 kernels differ between x86 (AVX2 u8s8) and ARM (NEON dot product): agreement is reported, close
    assert int8_parity["mean_cosine"] > 0.99 and int8_parity["max_abs_diff"] < 0.5
    md = to_markdown(report)
    assert f"{arm_device.target} (Neoverse-N1, emulated)" in md and "**emulated** (qemu-aarch64" in md
    p50 = remote["student"]["latency_ms"]["p50"]
    assert f"| {p50:.2f} (emulated) |" in md
    # ratios on the emulated device: only between its own variants, never against the local teacher's ms
    section = md.split(f"## Ratios ({arm_device.target}, emulated: ratios between variants on this device only)")[1]
    row = next(ln for ln in section.splitlines() if ln.startswith(f"| {arm_device.target} | student-int8 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "–"  # speed-up vs teacher (measured on another device) is not computed
    assert cells[-1] == f"{p50 / remote['student-int8']['latency_ms']['p50']:.2f}×"
    paths = write_report(report, tmp_path / "bench")
    saved = json.loads(paths["json"].read_text())
    assert saved["devices"][arm_device.target]["emulated"] is True


def test_int8_gemm_kernels_agree_with_x86_at_minilm_width(arm_device, wide_onnx_pair):
    from benchmarks.remote import compare_outputs, parity_feeds

    for path, tol in zip(wide_onnx_pair, (1e-4, 1e-3)):
        feeds, reference = parity_feeds(path, 1000)
        res = run_remote(arm_device.target, path, QUICK[:-1] + ["1000"], arm_device.options(), feeds=feeds)
        parity = compare_outputs(reference, res["outputs"])
        print(f"\n{path.name}: aarch64 vs x86 max|diff| {parity['max_abs_diff']:.3g}, cosine {parity['mean_cosine']:.7f}")
        assert parity["max_abs_diff"] <= tol and parity["mean_cosine"] > 0.99999
