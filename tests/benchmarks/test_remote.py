"""Remote runner end to end over SSH against an asyncssh server this test starts on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from benchmarks.remote import (RemoteError, RemoteModelError, RemoteOptions, parse_target, run_remote,
                               runner_command)
from tests.benchmarks.helpers import export_onnx

asyncssh = pytest.importorskip("asyncssh", reason="pip install asyncssh for the SSH runner tests")

LOOPBACK = "127.0.0.1"


class LoopbackSSHServer:
    """An in-process SSH server bound to 127.0.0.1: public-key auth, SFTP, commands run locally."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = root / "id_client"
        self.client_key.write_private_key(str(self.client_key_path))
        self.commands: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.acceptor = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(30)
        self.port = self.acceptor.get_port()

    async def _handle(self, process) -> None:
        self.commands.append(process.command)
        proc = await asyncio.create_subprocess_shell(process.command, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        process.stdout.write(out.decode())
        process.stderr.write(err.decode())
        process.exit(proc.returncode)

    async def _listen(self):
        authorized = asyncssh.import_authorized_keys(self.client_key.export_public_key().decode())
        return await asyncssh.listen(LOOPBACK, 0, server_host_keys=[self.host_key], authorized_client_keys=authorized,
                                     process_factory=self._handle, sftp_factory=True)

    def known_hosts(self, key=None) -> Path:
        key = key or self.host_key
        path = self.root / f"known_hosts_{id(key)}"
        path.write_text(f"[{LOOPBACK}]:{self.port} {key.export_public_key().decode().strip()}\n")
        return path

    def close(self) -> None:
        self.acceptor.close()
        asyncio.run_coroutine_threadsafe(self.acceptor.wait_closed(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory):
    server = LoopbackSSHServer(tmp_path_factory.mktemp("sshd"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from tests.tiny import make_tiny_model

    d = tmp_path_factory.mktemp("remote-model")
    return export_onnx(make_tiny_model(d / "m", "bert", "embedding"), "embedding", d / "tiny model.onnx")


def _opts(server: LoopbackSSHServer, tmp_path: Path, **kw) -> RemoteOptions:
    base = dict(known_hosts=str(server.known_hosts()), identity=str(server.client_key_path), python=sys.executable,
                remote_dir=str(tmp_path / "remote dir; with 'quotes'"), connect_timeout=10)
    base.update(kw)
    return RemoteOptions(**base)


ARGS = ["--batch", "1,2", "--seq", "8,16", "--warmup", "2", "--min-runs", "5", "--min-seconds", "0", "--threads", "1",
        "--vocab", "300"]


def test_parse_target_and_quoting():
    t = parse_target("ssh://pi@10.0.0.7:2222")
    assert (t.user, t.host, t.port, str(t)) == ("pi", "10.0.0.7", 2222, "ssh://pi@10.0.0.7:2222")
    assert parse_target("ssh://board").port == 22
    assert parse_target("adb://R58M123ABC").serial == "R58M123ABC"
    with pytest.raises(RemoteError, match="expected ssh://"):
        parse_target("http://x")
    cmd = runner_command(RemoteOptions(), "/tmp/a b/remote_runner.py", "/tmp/a b/m;rm -rf x.onnx", ["--seq", "8"])
    assert cmd.count("'/tmp/a b/") == 2 and "'/tmp/a b/m;rm -rf x.onnx'" in cmd


def test_ssh_end_to_end(ssh_server, onnx_model, tmp_path):
    res = run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, ARGS, _opts(ssh_server, tmp_path))
    assert res["target"] == f"ssh://tester@{LOOPBACK}:{ssh_server.port}"
    assert [(p["batch"], p["seq"]) for p in res["points"]] == [(1, 8), (1, 16), (2, 8), (2, 16)]
    assert all(p["latency_ms"]["runs"] >= 5 and p["latency_ms"]["p50"] > 0 for p in res["points"])
    assert res["latency_ms"]["p90"] >= res["latency_ms"]["p50"]
    assert res["size_mb"] == pytest.approx(onnx_model.stat().st_size / 1e6)
    assert res["cold_start_ms"] > 0 and res["device"]["cores"] >= 1
    assert res["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert (tmp_path / "remote dir; with 'quotes'" / "tiny model.onnx").is_file()  # quoted paths arrived intact
    assert len(ssh_server.commands) >= 2


def test_ssh_realistic_lengths(ssh_server, onnx_model, tmp_path):
    args = ARGS + ["--lengths", "5,9,12"]
    res = run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, args, _opts(ssh_server, tmp_path))
    assert [p["seq"] for p in res["points"]] == ["realistic", "realistic"]
    assert 5 <= res["points"][0]["mean_seq"] <= 12


def test_wrong_host_key_is_refused(ssh_server, onnx_model, tmp_path):
    other = asyncssh.generate_private_key("ssh-ed25519")
    opts = _opts(ssh_server, tmp_path, known_hosts=str(ssh_server.known_hosts(other)))
    before = len(ssh_server.commands)
    with pytest.raises(RemoteError, match="does not match"):
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, ARGS, opts)
    assert len(ssh_server.commands) == before  # nothing ran
    # a key given in config works in place of known_hosts, and a wrong one is refused the same way
    good = ssh_server.host_key.export_public_key().decode()
    res = run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, ["--batch", "1", "--seq", "8",
                     "--warmup", "0", "--min-runs", "2", "--min-seconds", "0", "--vocab", "300"],
                     _opts(ssh_server, tmp_path, known_hosts=None, host_key=good))
    assert res["latency_ms"]["runs"] == 2
    with pytest.raises(RemoteError, match="does not match"):
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, ARGS,
                   _opts(ssh_server, tmp_path, known_hosts=None, host_key=other.export_public_key().decode()))


def test_missing_known_hosts_is_an_error(ssh_server, onnx_model, tmp_path):
    with pytest.raises(RemoteError, match="known_hosts file .* does not exist"):
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, ARGS,
                   _opts(ssh_server, tmp_path, known_hosts=str(tmp_path / "nope")))


def test_unreachable_target(ssh_server, onnx_model, tmp_path):
    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError, match="cannot reach") as err:
        run_remote(f"ssh://tester@{LOOPBACK}:{port}", onnx_model, ARGS, _opts(ssh_server, tmp_path))
    assert str(port) in str(err.value)


def test_model_the_runtime_cannot_load(ssh_server, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(RemoteModelError, match="onnxruntime cannot load") as err:
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", bad, ARGS, _opts(ssh_server, tmp_path))
    assert "broken.onnx" in str(err.value)


def test_tflite_picks_litert_by_suffix_and_a_missing_litert_is_one_line(ssh_server, tmp_path, monkeypatch, capsys):
    """A .tflite runs in the LiteRT interpreter (a broken one is a load error naming it); a device without
    ai-edge-litert answers with the one-line dependency error and its pip line, before looking at the file."""
    import benchmarks.remote_runner as rr

    pytest.importorskip("ai_edge_litert", reason="pip install 'edgepress[litert]' for the LiteRT interpreter")
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(RemoteModelError, match="litert cannot load") as err:
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", bad, ARGS, _opts(ssh_server, tmp_path))
    assert "broken.tflite" in str(err.value) and "\n" not in str(err.value)
    assert rr.runtime_for("m.TFLITE") == "litert" and rr.runtime_for("m.onnx") == rr.runtime_for("m.ort") == "onnxruntime"
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # `import ai_edge_litert` fails as on a bare device
    assert rr.main(["--model", str(tmp_path / "absent.tflite")]) == 4
    assert json.loads(capsys.readouterr().out) == {
        "error": "missing on device: ai_edge_litert; pip install ai-edge-litert numpy", "kind": "dependency"}


def test_openvino_ir_runs_with_its_bin_and_a_missing_openvino_is_one_line(ssh_server, onnx_model, tmp_path, monkeypatch,
                                                                          capsys):
    """An IR's .xml runs in OpenVINO with its .bin uploaded beside it, bucketed like the local runner (16 tokens ->
    bucket 16, 17 -> 32), outputs equal to this machine's f32 run; a broken IR is a load error naming openvino; an
    IR without its .bin stops before connecting; a device without openvino answers with the one-line dependency
    error and its pip line."""
    import benchmarks.remote_runner as rr
    from benchmarks.remote import compare_outputs, parity_feeds

    ov = pytest.importorskip("openvino", reason="pip install 'edgepress[openvino]' for OpenVINO")
    assert rr.runtime_for("ir/openvino_model.XML") == "openvino"
    assert rr.model_files("a/m.xml") == ["a/m.xml", "a/m.bin"] and rr.model_files("a/m.onnx") == ["a/m.onnx"]
    ir = tmp_path / "ir" / "openvino_model.xml"
    ov.save_model(ov.convert_model(str(onnx_model)), str(ir), compress_to_fp16=False)
    feeds, reference = parity_feeds(ir, 300)
    opts = _opts(ssh_server, tmp_path)
    args = ["--batch", "1", "--seq", "16,17", "--warmup", "1", "--min-runs", "3", "--min-seconds", "0", "--threads", "1",
            "--vocab", "300"]
    res = run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", ir, args, opts, feeds=feeds)
    assert res["runtime"] == "openvino" and res["runtime_version"] == ov.__version__
    assert (tmp_path / "remote dir; with 'quotes'" / "openvino_model.bin").is_file()  # the weights went along
    assert res["size_mb"] == pytest.approx((ir.stat().st_size + ir.with_suffix(".bin").stat().st_size) / 1e6)
    assert [p["seq"] for p in res["points"]] == [16, 17] and res["threads"]["inter_op"] is None
    shapes = res["openvino"]
    assert sorted(shapes["compiled_shapes"]) == [[1, 16], [1, 32]]  # the timed session's: 16 -> 16, 17 -> 32
    assert shapes["hints"]["PERFORMANCE_HINT"] == "LATENCY" and shapes["hints"]["INFERENCE_NUM_THREADS"] == "1"
    # timed in the CPU's default precision (bf16 on AMX hosts), as an app runs it; the --feeds outputs in f32, as the
    # reference: the same arithmetic on both sides
    default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    assert shapes["hints"]["INFERENCE_PRECISION_HINT"] == default and shapes["outputs_precision"] == "f32"
    parity = compare_outputs(reference, res["outputs"])
    assert res["output_names"] == list(reference) and parity["max_abs_diff"] <= 1e-5, parity
    assert res["outputs"]["last_hidden_state"].shape == (2, 16, 32)

    bad = tmp_path / "broken" / "model.xml"
    bad.parent.mkdir()
    bad.write_text("<net>not an IR")
    bad.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(RemoteModelError, match="openvino cannot load") as err:
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", bad, ARGS, opts)
    assert "model.xml" in str(err.value) and "\n" not in str(err.value)
    bad.with_suffix(".bin").unlink()
    before = len(ssh_server.commands)
    with pytest.raises(RemoteError, match=r"model file '.*model.bin' does not exist \(an OpenVINO IR needs its .bin"):
        run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", bad, ARGS, opts)
    assert len(ssh_server.commands) == before
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails as on a bare device
    assert rr.main(["--model", str(tmp_path / "absent.xml")]) == 4
    assert json.loads(capsys.readouterr().out) == {
        "error": "missing on device: openvino; pip install openvino numpy", "kind": "dependency"}


def test_runner_standalone_json(onnx_model, capsys):
    """The device file imports nothing from edgepress and prints one JSON object."""
    import benchmarks.remote_runner as rr

    src = Path(rr.__file__).read_text()
    assert "import compress" not in src and "from benchmarks" not in src and "from compress" not in src
    rc = rr.main(["--model", str(onnx_model), "--batch", "1", "--seq", "8", "--warmup", "1", "--min-runs", "3",
                  "--min-seconds", "0"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["latency_ms"]["runs"] == 3
    assert rr.main(["--model", "/nonexistent.onnx"]) == 2
    assert "not found" in json.loads(capsys.readouterr().out)["error"]
    # a run-time failure (token id past the vocabulary) is reported as JSON, not a traceback
    assert rr.main(["--model", str(onnx_model), "--seq", "8", "--vocab", "5000", "--warmup", "0"]) == 1
    assert "Gather" in json.loads(capsys.readouterr().out)["error"]


def test_probe_and_feeds_outputs_match_a_local_run(ssh_server, onnx_model, tmp_path, monkeypatch):
    """--device-info and --feeds on the loopback target (the emulated aarch64 device runs the same in tests/arm)."""
    import numpy as np

    from benchmarks.remote import compare_outputs, parity_feeds, probe_device

    opts = _opts(ssh_server, tmp_path)
    info = probe_device(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", opts)
    assert info["arch"] and info["cores"] >= 1 and info["emulated"] is False and "emulator" not in info
    feeds, reference = parity_feeds(onnx_model, 300)
    assert feeds["input_ids"].shape == (2, 16) and feeds["attention_mask"][1].sum() == 9
    res = run_remote(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", onnx_model, ARGS, opts, feeds=feeds)
    assert set(res["outputs"]) == set(reference) and res["output_names"] == list(reference)
    parity = compare_outputs(reference, res["outputs"])
    assert parity["max_abs_diff"] <= 1e-5 and parity["mean_cosine"] > 0.999999
    off = {k: v + (0.5 if k == "sentence_embedding" else 0.0) for k, v in res["outputs"].items()}
    assert compare_outputs(reference, off)["outputs"]["sentence_embedding"]["max_abs_diff"] == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(RemoteError, match="missing from the target"):
        compare_outputs(reference, {"last_hidden_state": res["outputs"]["last_hidden_state"]})
    monkeypatch.setenv("EDGEPRESS_EMULATED", "qemu-test")  # what tests/arm/emulated.py sets for its device
    info = probe_device(f"ssh://tester@{LOOPBACK}:{ssh_server.port}", opts)
    assert info["emulated"] is True and info["emulator"] == "qemu-test"
    assert np.asarray(res["outputs"]["sentence_embedding"]).dtype == np.float32
