"""One bench of a runtime's files on the emulated aarch64 device, through `edgepress bench run --target`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def bench_on_device(arm_device: Any, models: dict[str, Path], tokenizer: Path, seq: int, fmt: str,
                    out: Path) -> tuple[dict[str, Any], dict[str, dict], dict[str, dict]]:
    """Bench ``models`` (name -> file) at batch 1 x ``seq`` tokens, 1 thread, on the device and here; returns the
    report and its device and local entries by name, after checking what every runtime's entries must show."""
    from benchmarks.report import validate_report
    from compress.cli.main import main

    opts = arm_device.options()
    main(["bench", "run", *(f"{name}={path}" for name, path in models.items()), "--task", "embedding",
          "--tokenizer", str(tokenizer), "--batch", "1", "--seq", str(seq), "--warmup", "1", "--min-runs", "3",
          "--min-seconds", "0", "--threads", "1", "--no-session-memory", "--target", arm_device.target,
          "--known-hosts", opts.known_hosts, "--identity", opts.identity, "--remote-dir", opts.remote_dir,
          "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    dev = report["devices"][arm_device.target]
    assert dev["arch"] == "aarch64" and dev["emulated"] is True and dev["cpu"] == "Neoverse-N1"
    remote = {e["name"]: e for e in report["models"] if e["target"] == arm_device.target}
    local = {e["name"]: e for e in report["models"] if e["target"] == "local"}
    assert set(remote) == set(local) == set(models)
    for name, e in remote.items():
        assert e["status"] == "ok" and e["format"] == fmt, e.get("reason")
        assert e["runtime"]["backend"] == fmt == local[name]["runtime"]["backend"]
        assert e["runtime"]["threads"]["intra_op"] == 1
        assert e["latency_ms"]["runs"] >= 3 and e["latency_ms"]["p50"] > 0 and e["peak_rss_mb"] > 0
        assert e["latency_ms"]["p50"] != local[name]["latency_ms"]["p50"]  # measured there, not copied
    return report, remote, local
