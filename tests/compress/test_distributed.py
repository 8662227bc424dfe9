"""The multi-process path: torchrun with 2 CPU processes (gloo) distills a tiny model to completion."""

import json
import subprocess
import sys


def test_torchrun_two_processes_distill(tiny_bert_dir, tmp_path):
    out = tmp_path / "student"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "compress.cli.main", "distill",
           str(tiny_bert_dir), str(out), "--data", "builtin:pydoc", "--layers", "1", "--set", "task=embedding",
           "--set", "distill.max_steps=4", "--set", "distill.batch_size=8"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((out / "stage.json").read_text())
    assert meta["metrics"]["world_size"] == 2
    assert meta["metrics"]["steps"] == 4
    assert (out / "model" / "model.safetensors").is_file()
    assert not (tmp_path / ".student.tmp.rank1").exists()
