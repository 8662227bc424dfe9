"""SIGTERM (what `timeout`, systemd, Kubernetes and CI runners send) during distill, export, quantize, package and
run, in a separate process: exit 143 with one message naming the stage, nothing that looks finished, and the same
command resumes to the result an uninterrupted run gives."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.compress.test_cli_process import edgepress, start, wait_for


def terminate(proc: subprocess.Popen, stage: str) -> str:
    """Send SIGTERM and check the way the process ends; returns its stderr."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("terminated")), None)
    assert first is not None, err[-3000:]
    message = " ".join(lines[first:])
    assert len(lines[first:]) <= 3, err[-3000:]
    assert f"during stage '{stage}'" in message and "run the same command again to resume" in message, err[-3000:]
    return err


HELD = """
import sys, time
from pathlib import Path
import export.onnx_export as onnx_export

reached, real = Path(sys.argv[1]), onnx_export.export_onnx

def held(*args, **kwargs):  # the stage is inside the exporter: say so, then wait for the signal
    reached.touch()
    for _ in range(2400):
        time.sleep(0.05)
    return real(*args, **kwargs)

onnx_export.export_onnx = held
from compress.cli.main import main
main(sys.argv[2:])
"""


def start_held_in_export(reached: Path, *args: str, cwd: Path) -> subprocess.Popen:
    """``edgepress ARGS`` in a child that stops inside the ONNX exporter once it gets there, so a signal sent after
    ``reached`` exists lands inside the stage however fast this machine exports a tiny model."""
    from tests.compress.test_cli_process import _env, _interruptible

    return subprocess.Popen([sys.executable, "-c", HELD, str(reached), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), preexec_fn=_interruptible)


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def onnx_outputs(path: Path) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array([[2, 40, 41, 42, 43, 44, 3]], dtype=np.int64)
    feeds = {i.name: (ids if i.name == "input_ids" else np.ones_like(ids) if i.name == "attention_mask"
                      else np.zeros_like(ids)) for i in sess.get_inputs()}
    return sess.run(None, feeds)


def assert_same_onnx(a: Path, b: Path) -> None:
    for x, y in zip(onnx_outputs(a), onnx_outputs(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


DISTILL = ["--layers", "1", "--set", "distill.max_steps=60", "--set", "distill.batch_size=4",
           "--set", "data.max_train_samples=256"]


def test_sigterm_during_distill_exits_143_and_the_rerun_resumes_to_the_same_student(tmp_path, tiny_bert_dir):
    from safetensors.torch import load_file

    ok(edgepress("distill", str(tiny_bert_dir), str(tmp_path / "base"), *DISTILL, cwd=tmp_path))
    out = tmp_path / "out"
    proc = start("distill", str(tiny_bert_dir), str(out), *DISTILL, cwd=tmp_path)
    ckpts = tmp_path / ".out.work" / ".checkpoints"
    # save_steps = max(10, 60 // 4) = 15: terminate once the first checkpoint is on disk
    wait_for(lambda: any(ckpts.glob("distill-*/checkpoint-15/trainer_state.json")), proc)
    terminate(proc, "distill")
    assert not out.exists() and not (tmp_path / ".out.tmp" / "stage.json").exists()
    ok(edgepress("distill", str(tiny_bert_dir), str(out), *DISTILL, cwd=tmp_path))
    meta = json.loads((out / "stage.json").read_text())
    assert meta["metrics"]["steps"] == 60 and (meta["metrics"]["resumed_from"] or "").startswith("checkpoint-")
    base, again = (load_file(str(d / "model" / "model.safetensors")) for d in (tmp_path / "base", out))
    assert base.keys() == again.keys()
    for k in base:  # Trainer restores the RNG and data order: resuming lands where the straight run did
        np.testing.assert_allclose(again[k].numpy(), base[k].numpy(), rtol=0, atol=1e-5, err_msg=k)


def test_sigterm_during_export_exits_143_and_the_rerun_writes_the_same_model(tmp_path, tiny_bert_dir):
    args = ["--set", "export.formats=[onnx, ort]"]
    ok(edgepress("export", str(tiny_bert_dir), str(tmp_path / "base"), *args, cwd=tmp_path))
    out = tmp_path / "out"
    reached = tmp_path / "in-exporter"
    proc = start_held_in_export(reached, "export", str(tiny_bert_dir), str(out), *args, cwd=tmp_path)
    wait_for(reached.exists, proc)
    terminate(proc, "export")
    assert not out.exists() and not (tmp_path / ".out.tmp" / "stage.json").exists()
    ok(edgepress("export", str(tiny_bert_dir), str(out), *args, cwd=tmp_path))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "base").iterdir())
    assert_same_onnx(tmp_path / "base" / "model.onnx", out / "model.onnx")


def test_sigterm_during_quantize_exits_143_and_the_rerun_writes_the_same_model(tmp_path, tiny_bert_dir):
    ok(edgepress("export", str(tiny_bert_dir), str(tmp_path / "fp32"), "--set", "export.formats=[onnx]", cwd=tmp_path))
    model = tmp_path / "fp32" / "model.onnx"
    args = ["--set", "data.max_train_samples=64"]
    ok(edgepress("quantize", str(model), str(tmp_path / "base"), *args, cwd=tmp_path))
    out = tmp_path / "out"
    proc = start("quantize", str(model), str(out), *args, cwd=tmp_path)
    wait_for(lambda: (tmp_path / ".out.tmp").is_dir(), proc)
    terminate(proc, "quantize")
    assert not out.exists() and not (tmp_path / ".out.tmp" / "stage.json").exists()
    ok(edgepress("quantize", str(model), str(out), *args, cwd=tmp_path))
    # which file is recommended also weighs latency on this (shared) CPU; the files and their accuracy do not vary
    base, again = (json.loads((d / "stage.json").read_text()) for d in (tmp_path / "base", out))
    files = sorted(str(p.relative_to(tmp_path / "base")) for p in (tmp_path / "base").rglob("*.onnx"))
    assert files and files == sorted(str(p.relative_to(out)) for p in out.rglob("*.onnx"))
    for name in files:  # every quantized candidate, the same numbers
        assert_same_onnx(tmp_path / "base" / name, out / name)
    for method, r in base["metrics"]["methods"].items():
        mine = again["metrics"]["methods"][method]
        assert (mine["size_mb"], mine.get("retention")) == (r["size_mb"], r.get("retention")), method


@pytest.fixture
def finished_run(tmp_path, tiny_bert_dir) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\noutput_dir: {tmp_path / 'runs'}\nstages: [distill, export]\n"
                   f"teacher: {{model: '{tiny_bert_dir}'}}\ndata: {{train: 'builtin:pydoc', max_train_samples: 32}}\n"
                   "student: {num_layers: 1}\ndistill: {max_steps: 1, batch_size: 8}\nexport: {formats: [onnx]}\n")
    ok(edgepress("run", str(cfg), cwd=tmp_path))
    return tmp_path / "runs" / "t"


def test_sigterm_during_package_keeps_the_previous_final_and_the_rerun_rebuilds_it(tmp_path, finished_run):
    run = finished_run
    before = (run / "final" / "package.json").read_bytes()
    shutil.copytree(run / "final", tmp_path / "base-final")
    proc = start("package", str(run), cwd=tmp_path)
    wait_for(lambda: (run / ".03-package.tmp").is_dir(), proc)  # the package stage builds final/ in its folder
    terminate(proc, "package")
    assert (run / "final" / "package.json").read_bytes() == before  # the previous final/, whole
    assert not (run / ".lock").read_text().strip()  # the lock was released
    ok(edgepress("package", str(run), cwd=tmp_path))
    base = tmp_path / "base-final"
    names = sorted(str(p.relative_to(base)) for p in base.rglob("*"))
    assert sorted(str(p.relative_to(run / "final")) for p in (run / "final").rglob("*")) == names
    old, new = (json.loads((d / "package.json").read_text()) for d in (base, run / "final"))
    assert new["chosen"] == old["chosen"] and new["files"] == old["files"] and new["key"] == old["key"]
    assert_same_onnx(base / "onnx" / "model.onnx", run / "final" / "onnx" / "model.onnx")


def test_sigterm_during_run_names_the_stage_and_the_rerun_finishes(tmp_path, tiny_bert_dir):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\noutput_dir: {tmp_path / 'runs'}\nstages: [distill]\nteacher: {{model: '{tiny_bert_dir}'}}\n"
                   "data: {train: 'builtin:pydoc', max_train_samples: 256}\nstudent: {num_layers: 1}\n"
                   "distill: {max_steps: 400, batch_size: 4}\n")
    run = tmp_path / "runs" / "t"
    proc = start("run", str(cfg), cwd=tmp_path)
    wait_for(lambda: (run / ".01-distill.tmp").is_dir(), proc)
    terminate(proc, "distill")
    assert not (run / "01-distill").exists() and not (run / ".lock").read_text().strip()
    ok(edgepress("run", str(cfg), cwd=tmp_path))
    assert json.loads((run / "01-distill" / "stage.json").read_text())["metrics"]["steps"] == 400
