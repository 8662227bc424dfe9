"""The CLI as a separate process (``python -m compress.cli.main``, what the console script runs): Ctrl-C, two runs of one
folder, a damaged checkpoint, bench on an unloadable model, and what the console shows versus log.txt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def edgepress(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compress.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env())


def _interruptible() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A test run launched in the background (nohup, `cmd &` in a
    script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compress.cli.main", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), preexec_fn=_interruptible)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended (rc {proc.returncode}) before the condition held:\n{err[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("condition not reached in time")
        time.sleep(0.05)


def write_config(tmp_path: Path, model: Path, steps: int, stages: str = "[distill]", extra: str = "") -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\noutput_dir: {tmp_path / 'runs'}\nstages: {stages}\nteacher: {{model: '{model}'}}\n"
                   "data: {train: 'builtin:pydoc', max_train_samples: 256}\nstudent: {num_layers: 1}\n"
                   f"distill: {{max_steps: {steps}, batch_size: 4, logging_steps: 1}}\n{extra}")
    return cfg


def test_ctrl_c_during_a_stage_exits_130_and_the_rerun_resumes(tmp_path, tiny_bert_dir):
    cfg = write_config(tmp_path, tiny_bert_dir, steps=800)
    ckpts = tmp_path / "runs" / "t" / ".checkpoints"
    proc = start("run", str(cfg), cwd=tmp_path)
    # save_steps = max(10, 800 // 4) = 200: interrupt once the first checkpoint is on disk
    wait_for(lambda: any(ckpts.glob("distill-*/checkpoint-200/trainer_state.json")), proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "distill" in err and "resume" in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "t" / "01-distill" / "stage.json").exists()
    assert not (tmp_path / "runs" / "t" / ".lock").read_text().strip()  # released
    res = edgepress("run", str(cfg), cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((tmp_path / "runs" / "t" / "01-distill" / "stage.json").read_text())
    assert (meta["metrics"]["resumed_from"] or "").startswith("checkpoint-"), res.stderr[-3000:]
    assert int(meta["metrics"]["resumed_from"].split("-")[1]) >= 200 and meta["metrics"]["steps"] == 800
    assert not ckpts.exists()  # removed once the stage finished


def test_second_run_of_one_folder_refuses_and_the_first_finishes(tmp_path, tiny_bert_dir):
    cfg = write_config(tmp_path, tiny_bert_dir, steps=300)
    lock = tmp_path / "runs" / "t" / ".lock"
    first = start("run", str(cfg), cwd=tmp_path)
    wait_for(lambda: (tmp_path / "runs" / "t" / ".01-distill.tmp").exists(), first)
    holder = lock.read_text().split()
    second = edgepress("run", str(cfg), cwd=tmp_path)
    assert second.returncode == 1, second.stderr
    assert f"in use by process {first.pid}" in second.stderr and holder[0] == str(first.pid)
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) <= 3
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    meta = json.loads((tmp_path / "runs" / "t" / "01-distill" / "stage.json").read_text())
    assert meta["metrics"]["steps"] == 300
    assert (tmp_path / "runs" / "t" / "01-distill" / "model" / "model.safetensors").is_file()


def test_damaged_checkpoint_is_discarded_and_the_rerun_goes_on(tmp_path, tiny_bert_dir):
    cfg = write_config(tmp_path, tiny_bert_dir, steps=20)
    first = edgepress("run", str(cfg), "--keep-checkpoints", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    [ckpt] = list((tmp_path / "runs" / "t" / ".checkpoints").glob("distill-*/checkpoint-20"))
    optimizer = ckpt / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # a run killed while writing it
    res = edgepress("run", str(cfg), "--force", "distill", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "checkpoint-20' is damaged (optimizer.pt does not load" in res.stderr
    assert "training starts from scratch" in res.stderr and "Traceback" not in res.stderr
    meta = json.loads((tmp_path / "runs" / "t" / "01-distill" / "stage.json").read_text())
    assert meta["metrics"]["resumed_from"] is None and meta["metrics"]["steps"] == 20
    assert not (tmp_path / "runs" / "t" / ".checkpoints").exists()  # no --keep-checkpoints this time


def test_stale_lock_of_a_killed_run_is_taken_over(tmp_path, tiny_bert_dir):
    cfg = write_config(tmp_path, tiny_bert_dir, steps=1)
    run_dir = tmp_path / "runs" / "t"
    run_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (run_dir / ".lock").write_text(f"{dead.pid} {socket.gethostname()} 2026-01-01T00:00:00\n")
    res = edgepress("run", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"taking over the lock of '{run_dir}' left by process {dead.pid}" in res.stderr
    assert "no longer running" in res.stderr


def test_bench_run_on_an_unloadable_model_fails_unless_partial(tmp_path, tiny_bert_dir):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_dir, broken)
    (broken / "model.safetensors").write_bytes(os.urandom(2048))
    args = ["bench", "run", str(broken), "--seq", "8", "--warmup", "0", "--min-runs", "1", "--min-seconds", "0",
            "--out", str(tmp_path / "bench")]
    res = edgepress(*args, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert "1 of 1 measurements failed" in res.stderr and "model.safetensors" in res.stderr
    assert json.loads((tmp_path / "bench" / "report.json").read_text())["models"][0]["status"] == "error"
    assert edgepress(*args, "--allow-partial", cwd=tmp_path).returncode == 0


def test_console_holds_no_trainer_dicts_or_third_party_warnings_and_log_txt_does(tmp_path, tiny_bert_dir):
    cfg = write_config(tmp_path, tiny_bert_dir, steps=3, stages="[distill, export]",
                       extra="export: {formats: [onnx]}\n")
    res = edgepress("run", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    console = res.stdout + res.stderr
    for noise in ("{'loss':", "'grad_norm'", "TracerWarning", "Some weights of", "UserWarning", "DeprecationWarning",
                  "FutureWarning", "warnings.warn"):
        assert noise not in console, (noise, console[-3000:])
    assert "distill:" in console and "loss" in console  # the named bar and its compact loss
    log = (tmp_path / "runs" / "t" / "log.txt").read_text()
    assert '{"loss":' in log and "grad_norm" in log  # Trainer's dicts, one per logging step
    assert "TracerWarning" in log  # the ONNX export's tracer warnings
    assert "Some weights of BertModel were not initialized" in log  # transformers' load warning
