"""tests/arm/emulated.py without the emulator: mirror discovery, cache key, one-line reasons when it cannot run."""

from __future__ import annotations

import pytest

from tests.arm import emulated
from tests.arm.emulated import EmulatorUnavailable, apt_sources, cache_key, debian_mirror


def test_mirror_read_from_both_apt_source_formats(tmp_path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian "
                                      "bookworm main\ndeb-src http://src.example/debian bookworm main\n")
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://other.example/debian/\nSuites: trixie\nComponents: main\n")
    assert apt_sources(etc) == [("http://mirror.example/debian", ["bookworm"]),
                                ("http://deb.example/debian-security", ["bookworm-security"]),
                                ("http://other.example/debian/", ["trixie"])]
    assert debian_mirror("bookworm", etc) == "http://mirror.example/debian"
    assert debian_mirror("trixie", etc) == "http://other.example/debian"
    with pytest.raises(EmulatorUnavailable, match="no Debian 'sid' mirror"):
        debian_mirror("sid", etc)


def test_cache_key_follows_suite_wheels_and_script_version(monkeypatch):
    wheels = {"onnxruntime": "1.32.0", "numpy": "2.4.6"}
    key = cache_key("bookworm", wheels)
    assert len(key) == 12 and key == cache_key("bookworm", dict(wheels))
    assert key != cache_key("trixie", wheels) and key != cache_key("bookworm", {**wheels, "numpy": "2.4.7"})
    monkeypatch.setattr(emulated, "SCRIPT_VERSION", emulated.SCRIPT_VERSION + 1)
    assert cache_key("bookworm", wheels) != key


def test_missing_emulator_is_a_one_line_reason(monkeypatch, tmp_path):
    real_which = emulated.shutil.which
    monkeypatch.setattr(emulated.shutil, "which", lambda t: None if t == "qemu-aarch64-static" else real_which(t))
    why = emulated.missing_tool()
    assert why is not None and "\n" not in why
    assert why.startswith("qemu-aarch64-static not found: apt-get install -y qemu-user-static debootstrap")
    with pytest.raises(EmulatorUnavailable, match="qemu-aarch64-static not found"):
        emulated.build(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-built left behind


def test_wrapper_binds_aarch64_cpuinfo_before_starting_qemu(tmp_path):
    text = emulated._wrapper(tmp_path / "dev dir", "qemu-aarch64-static 7.2")
    assert text.startswith("#!/bin/sh\n") and "exec unshare -m sh -c 'mount --bind \"$1\" /proc/cpuinfo" in text
    assert f"qemu-aarch64-static -cpu neoverse-n1 -L '{tmp_path}/dev dir/rootfs'" in text and "EDGEPRESS_EMULATED='qemu-aarch64-static 7.2'" in text
    block = emulated.CPUINFO_BLOCK.format(n=0)
    from benchmarks.remote_runner import cpu_info

    info = cpu_info(block)
    assert info["cpu"] == "Neoverse-N1" and {"asimddp", "dotprod"} <= set(info["isa"])
