"""Trainer checkpoints: every file a resume reads is validated; a damaged one is discarded, the previous one used."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from compress.run.checkpoints import checkpoint_problem, resumable_checkpoint


def make_checkpoint(folder, step: int):
    """The files transformers.Trainer writes into checkpoint-N (rng_state holds numpy's RNG state)."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    save_file(model.state_dict(), path / "model.safetensors")
    torch.save(opt.state_dict(), path / "optimizer.pt")
    torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()},
               path / "rng_state.pth")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (path / "training_args.bin").write_bytes(b"pickled TrainingArguments, never read on resume")
    return path


def test_a_good_checkpoint_loads_with_weights_only(tmp_path):
    assert checkpoint_problem(make_checkpoint(tmp_path, 10)) is None


@pytest.mark.parametrize("name,damage", [
    ("optimizer.pt", lambda b: b[:64]),
    ("rng_state.pth", lambda b: b[: len(b) // 2]),
    ("model.safetensors", lambda b: b[: len(b) // 2]),
    ("trainer_state.json", lambda b: b[:5]),
])
def test_damaged_newest_falls_back_to_the_previous_one(tmp_path, capsys, name, damage):
    good = make_checkpoint(tmp_path, 10)
    bad = make_checkpoint(tmp_path, 20)
    (bad / name).write_bytes(damage((bad / name).read_bytes()))
    assert checkpoint_problem(bad).startswith(name)
    assert resumable_checkpoint(tmp_path) == str(good)
    err = capsys.readouterr().err
    assert f"checkpoint-20' is damaged ({name}" in err and "resuming from the previous one, checkpoint-10" in err
    assert not bad.exists() and good.exists()  # discarded, so the next run does not trip over it


def test_every_checkpoint_damaged_means_scratch(tmp_path, capsys):
    for step in (10, 20):
        ckpt = make_checkpoint(tmp_path, step)
        (ckpt / "rng_state.pth").write_bytes(b"\x00" * 10)
    assert resumable_checkpoint(tmp_path) is None
    err = capsys.readouterr().err
    assert err.count("is damaged") == 2 and "training starts from scratch" in err
    assert resumable_checkpoint(tmp_path / "missing") is None


def test_a_checkpoint_that_needs_unpickling_is_refused_not_loaded(tmp_path):
    ckpt = make_checkpoint(tmp_path, 10)

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled",))

    torch.save({"state": Payload()}, ckpt / "scheduler.pt")
    assert "scheduler.pt does not load" in checkpoint_problem(ckpt)
