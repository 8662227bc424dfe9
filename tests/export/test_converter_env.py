"""The converter's isolated virtualenv: created once (locked, atomic), reused, refused with pip's reason."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from export import converter_env
from export.converter_env import READY, ConverterEnvError, ConverterSpec, ensure_env, env_key, run_script

FAKE = ConverterSpec("fake", ("fake-converter==1.0",), "a fake converter", "~0 s")


def _fake_build(calls: list, delay: float = 0.0):
    """A stand-in for the pip install: a real venv without packages (cheap), counted."""

    def build(spec, target, torch_version):
        calls.append(Path(target))
        time.sleep(delay)  # other callers arrive while this one builds
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)

    return build


def test_created_once_then_reused(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(converter_env, "_build", _fake_build(calls))
    first = ensure_env(FAKE, tmp_path, torch_version="2.13.0+cpu")
    again = ensure_env(FAKE, tmp_path, torch_version="2.13.0+cpu")
    assert first == again and len(calls) == 1
    assert (first / READY).read_text().splitlines() == ["fake-converter==1.0", "torch==2.13.0+cpu"]
    assert first.name == f"fake-{env_key(FAKE, '2.13.0+cpu')}"
    assert calls[0] != first and calls[0].parent == tmp_path  # built beside, then renamed into place
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fake-") and p.is_dir()]
    # the env's Python runs scripts (list argv, no shell), stdout back
    script = tmp_path / "s.py"
    script.write_text("import sys; print(sys.prefix, sys.argv[1])")
    prefix, arg = run_script(first, script, ["a b"], "the fake script").split(" ", 1)
    assert Path(prefix) == first and arg.strip() == "a b"


def test_another_torch_or_spec_is_another_env(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(converter_env, "_build", _fake_build(calls))
    a = ensure_env(FAKE, tmp_path, torch_version="2.13.0")
    b = ensure_env(FAKE, tmp_path, torch_version="2.14.0")
    c = ensure_env(ConverterSpec("fake", ("fake-converter==2.0",), "x"), tmp_path, torch_version="2.13.0")
    assert len({a, b, c}) == 3 and len(calls) == 3


def test_concurrent_callers_build_once(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(converter_env, "_build", _fake_build(calls, delay=1.0))
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(ensure_env(FAKE, tmp_path, torch_version="1"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 3 and len(set(got)) == 1 and len(calls) == 1


def test_failed_build_leaves_nothing_and_says_why(tmp_path, monkeypatch):
    def broken(spec, target, torch_version):
        Path(target, "half").write_text("x")
        raise ConverterEnvError("cannot install a fake converter: pip says: ERROR: No matching distribution")

    monkeypatch.setattr(converter_env, "_build", broken)
    with pytest.raises(ConverterEnvError, match="No matching distribution"):
        ensure_env(FAKE, tmp_path, torch_version="1")
    assert [p.name for p in tmp_path.iterdir()] == [f".fake-{env_key(FAKE, '1')}.lock"]


def test_half_made_env_is_rebuilt(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(converter_env, "_build", _fake_build(calls))
    stale = tmp_path / f"fake-{env_key(FAKE, '1')}"
    stale.mkdir()
    (stale / "junk").write_text("x")
    env = ensure_env(FAKE, tmp_path, torch_version="1")
    assert env == stale and (env / READY).is_file() and not (env / "junk").exists() and len(calls) == 1


def test_pip_failure_is_one_line_naming_pip(tmp_path, monkeypatch):
    """The real build with a package no index has: pip's ERROR line, no env left behind."""
    spec = ConverterSpec("nope", ("edgepress-no-such-package-xyz==0.0.1",), "a missing converter")
    with pytest.raises(ConverterEnvError) as err:
        ensure_env(spec, tmp_path, torch_version="2.13.0")
    msg = str(err.value)
    assert "\n" not in msg and "pip says: ERROR:" in msg and "edgepress-no-such-package-xyz" in msg
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_script_failure_names_the_error(tmp_path, monkeypatch):
    monkeypatch.setattr(converter_env, "_build", _fake_build([]))
    env = ensure_env(FAKE, tmp_path, torch_version="1")
    script = tmp_path / "bad.py"
    script.write_text("raise ValueError('the model has no signature')")
    with pytest.raises(ConverterEnvError, match=r"the fake step failed .*exit 1.*ValueError: the model has no signature"):
        run_script(env, script, [], "the fake step")


def test_cache_root_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert converter_env.cache_root() == tmp_path / "edgepress" / "envs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert converter_env.cache_root() == Path.home() / ".cache" / "edgepress" / "envs"
